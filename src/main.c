/*
 * peernet-host: the CLI. For now it knows who it is; the commands of
 * DESIGN.md arrive with the networked host and the Lua runtime.
 */
#include <stdio.h>
#include <string.h>

#include <lua.h>
#include <sodium.h>
#include <uv.h>

#include "core/version.h"

static void usage(FILE *out) {
    fputs("usage: peernet-host [--version] [--help] <command> [args]\n"
          "\n"
          "Runs one PeerNet peer, programmed in Lua.\n"
          "\n"
          "options:\n"
          "  --version   print the version and the libraries it runs on\n"
          "  --help      print this help\n"
          "\n"
          "exit codes: 0 success, 1 runtime failure, 2 usage error\n",
          out);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("peernet-host %s (protocol v%d; %s, libsodium %s, libuv %s)\n", PN_VERSION,
               PN_PROTOCOL_VERSION, LUA_RELEASE, sodium_version_string(), uv_version_string());
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "peernet-host: unknown command '%s' (try --help)\n", argv[1]);
    return 2;
}
