// cmd_keygen.c: `saferl keygen NAME`: a CURVE key pair for the protocol's servers and clients,
// written as NAME.key (public certificate) and NAME.key_secret (secret, mode 0600) in czmq's
// ZPL layout.
#include <stdio.h>
#include <string.h>

#include "apps/saferl/commands.h"
#include "bridges/curve.h"
#include "core/error.h"


static int usage(FILE *f) {
  fprintf(f,
          "usage: saferl keygen NAME\n\n"
          "Writes a CURVE key pair: NAME.key, the public certificate to hand to peers (a\n"
          "server's for its clients' server_key option; a client's public key goes into the\n"
          "server's --allow file), and NAME.key_secret, the secret certificate (mode 0600) for\n"
          "--curve-secret or the client_cert option. Existing files are replaced.\n");
  return f == stdout ? 0 : 2;
}


int srl_cmd_keygen(int argc, char **argv) {
  if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) return usage(stdout);
  if (argc != 2 || argv[1][0] == '-' || !argv[1][0]) return usage(stderr);
  if (srl_curve_keygen(argv[1]) < 0) {
    fprintf(stderr, "saferl keygen: %s\n", srl_errmsg());
    return 1;
  }
  char pub[41];
  char path[4096];
  snprintf(path, sizeof path, "%s.key", argv[1]);
  if (srl_curve_load(path, pub, NULL) < 0) {
    fprintf(stderr, "saferl keygen: %s\n", srl_errmsg());
    return 1;
  }
  printf("wrote %s.key (public) and %s.key_secret (secret, mode 0600)\npublic key: %s\n", argv[1],
         argv[1], pub);
  return 0;
}
