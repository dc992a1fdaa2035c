/* topk.h - placeholder */
#ifndef DV_TOPK_H
#define DV_TOPK_H
#endif
