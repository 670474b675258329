#ifndef PN_VERSION_H
#define PN_VERSION_H

#define PN_VERSION "0.1.0"
#define PN_PROTOCOL_VERSION 1

#endif
