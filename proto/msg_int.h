/* msg_int.h - helpers shared by the encoder and the decoder of proto/ (not for users). */
#ifndef DV_MSG_INT_H
#define DV_MSG_INT_H

#include <stdbool.h>
#include <stdint.h>

/* True for a negative code that is in the DV_* table. */
bool msg_code_known(int64_t code);

/* Number of elements of a request body of this type, the address included. */
uint32_t msg_request_fields(int type);

#endif
