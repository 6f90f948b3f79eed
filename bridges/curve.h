// curve.h: CURVE security for the protocol's servers and clients: key pairs in czmq's ZPL
// certificate layout (`saferl keygen NAME` writes NAME.key and NAME.key_secret), loading them,
// and socket setup: a server encrypts and admits only the client public keys of an allow-list
// (checked by a ZAP handler thread on inproc://zeromq.zap.01 of the server's context); a client
// names the server's public key and its own key pair.
#ifndef SRL_BRIDGES_CURVE_H
#define SRL_BRIDGES_CURVE_H

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_CURVE_KEY_Z85 40  // a key in Z85 text (32 bytes binary)

// Write path_prefix.key (the public certificate) and path_prefix.key_secret (public and secret,
// mode 0600) from a fresh key pair. Existing files are replaced. SRL_EUNSUPPORTED when libzmq
// lacks CURVE, SRL_EIO when a file cannot be written.
int srl_curve_keygen(const char *path_prefix);

// Read a certificate: its public key into pub (41 bytes: 40 Z85 characters and NUL) and, when
// sec is not NULL, its secret key (a secret certificate is required then). SRL_EFORMAT with the
// file and line for a malformed certificate.
int srl_curve_load(const char *path, char pub[41], char sec[41]);

// Read an allow-list: one Z85 public key per line; blank lines and `#` comments are skipped, and
// a line `public-key = "..."` (a certificate's) counts as its key. keys gets up to max_keys keys
// of 32 bytes each; *n_keys their number. SRL_EFORMAT with the line of a bad key, SRL_ERANGE past
// max_keys.
int srl_curve_load_allow_list(const char *path, unsigned char (*keys)[32], int max_keys,
                              int *n_keys);

// Make sock (not yet bound) a CURVE server with the secret certificate's keys, and start a ZAP
// handler in ctx that admits only the allow-list's keys (allow_list NULL: any client that knows
// the server key). One handler per context: a second call on the same ctx is SRL_ESTATE. The
// handler thread ends when ctx is terminated.
int srl_curve_server_setup(void *ctx, void *sock, const char *secret_cert, const char *allow_list);

// Make sock (not yet connected) a CURVE client of the server whose public certificate is
// server_cert, with the key pair of client_secret_cert.
int srl_curve_client_setup(void *sock, const char *server_cert, const char *client_secret_cert);
// The same with keys already loaded (Z85 text), for clients that reopen sockets.
int srl_curve_client_setup_keys(void *sock, const char *server_pub, const char *client_pub,
                                const char *client_sec);

// ZAP decisions of every handler in this process since it started: admitted and refused
// handshakes (for tests and server statistics).
void srl_curve_zap_counts(long long *admitted, long long *refused);

#ifdef __cplusplus
}
#endif
#endif  // SRL_BRIDGES_CURVE_H
