/* cfg.h - placeholder */
#ifndef DV_CFG_H
#define DV_CFG_H
#endif
