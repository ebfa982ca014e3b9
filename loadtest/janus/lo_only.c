/*
 * LD_PRELOAD shim for the load test's Janus: getifaddrs() reports one interface, "lo"
 * with 127.0.0.1/8, flagged up and running but *not* IFF_LOOPBACK.
 *
 * Janus (src/ice.c) gathers ICE candidates on the interfaces getifaddrs() lists and skips
 * loopback ones, so on a loopback-only test it would offer no candidate at all. With this
 * shim it offers 127.0.0.1 and nothing else, so no media leaves the machine's loopback.
 *
 * Built by huddle-loadtest with `cc -shared -fPIC` into a temporary directory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct lo_only {
    struct ifaddrs ifa; /* first member: freeing the block frees the entry */
    struct sockaddr_in addr;
    struct sockaddr_in netmask;
    char name[3];
};

int getifaddrs(struct ifaddrs **ifap)
{
    struct lo_only *lo;

    if (ifap == NULL) {
        errno = EINVAL;
        return -1;
    }
    lo = calloc(1, sizeof(*lo));
    if (lo == NULL) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(lo->name, "lo", 3);
    lo->addr.sin_family = AF_INET;
    lo->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lo->netmask.sin_family = AF_INET;
    lo->netmask.sin_addr.s_addr = htonl(0xff000000u);
    lo->ifa.ifa_next = NULL;
    lo->ifa.ifa_name = lo->name;
    lo->ifa.ifa_flags = IFF_UP | IFF_RUNNING;
    lo->ifa.ifa_addr = (struct sockaddr *)&lo->addr;
    lo->ifa.ifa_netmask = (struct sockaddr *)&lo->netmask;
    *ifap = &lo->ifa;
    return 0;
}

void freeifaddrs(struct ifaddrs *ifa)
{
    free(ifa);
}
