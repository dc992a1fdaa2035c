/* log.h - placeholder */
#ifndef DV_LOG_H
#define DV_LOG_H
#endif
