/* buf.h - placeholder */
#ifndef DV_BUF_H
#define DV_BUF_H
#endif
