// test_remote_env.c: the remote env against the env server: remote stepping identical to local
// stepping (SimplePointGoal over ipc, a MuJoCo task over tcp), a dropped reply resent without
// stepping twice, a server killed mid-episode (an error within timeout·retries, then a new
// session at the next reset after a restart), idle timeouts and heartbeats, session limits,
// images for render(), and CURVE: an allowed key works, an unknown key and a plain client are
// refused.
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bridges/curve.h"
#include "bridges/env_server.h"
#include "bridges/remote_env.h"
#include "bridges/wire.h"
#include "core/rng.h"
#include "envs/env.h"
#include "test.h"

#define MAXD 512

static char tmpdir[] = "/tmp/srl-test-remote-XXXXXX";


static double now_s(void) {
  return (double)srl_wire_now_ns() * 1e-9;
}


static void sleep_s(double s) {
  struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&t, &t)) {
  }
}


// "ipc://<tmpdir>/<name>"
static const char *ipc(const char *name) {
  static char buf[8][300];
  static int k;
  char *b = buf[k++ % 8];
  snprintf(b, 300, "ipc://%s/%s", tmpdir, name);
  return b;
}


//---- a server in a thread ---------------------------------------------------------------------

typedef struct bg_server {
  srl_env_server *s;
  pthread_t th;
  volatile sig_atomic_t stop;
  int running;
} bg_server;


static void *bg_main(void *arg) {
  bg_server *b = arg;
  srl_env_server_run(b->s, &b->stop);
  return NULL;
}


static int bg_start(bg_server *b, const srl_env_server_config *cfg) {
  memset(b, 0, sizeof *b);
  SRL_TRY(srl_env_server_create(&b->s, cfg));
  if (pthread_create(&b->th, NULL, bg_main, b)) return SRL_EIO;
  b->running = 1;
  return SRL_OK;
}


static void bg_stop(bg_server *b) {
  if (b->running) {
    b->stop = 1;
    pthread_join(b->th, NULL);
  }
  srl_env_server_destroy(b->s);
  memset(b, 0, sizeof *b);
}


//---- a server in a child process --------------------------------------------------------------

static volatile sig_atomic_t child_stop;


static void child_term(int sig) {
  (void)sig;
  child_stop = 1;
}


static pid_t fork_server(const char *env_id, const char *bind) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  alarm(30);  // an orphan never outlives the test by much
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = child_term;
  sigaction(SIGTERM, &sa, NULL);
  srl_env_server_config cfg = {.env_id = env_id, .bind = bind};
  srl_env_server *s = NULL;
  if (srl_env_server_create(&s, &cfg) < 0) {
    fprintf(stderr, "child server: %s\n", srl_errmsg());
    _exit(1);
  }
  srl_env_server_run(s, &child_stop);
  srl_env_server_destroy(s);
  _exit(0);
}


//---- stepping both envs -----------------------------------------------------------------------

// reset both with seed and step both with the same actions (some outside the bounds) until the
// episode ends or max_steps; every number must be equal bit for bit. Returns the steps taken.
static int compare_episode(srl_env *remote, srl_env *local, uint64_t seed, int max_steps) {
  float ro[MAXD], lo[MAXD], act[64];
  int od = local->obs_space.dim, ad = local->act_space.dim;
  CHECK_OK(srl_env_reset(remote, seed, ro));
  CHECK_OK(srl_env_reset(local, seed, lo));
  CHECK(!memcmp(ro, lo, sizeof(float) * (size_t)od));
  int t = 0;
  for (; t < max_steps; t++) {
    for (int i = 0; i < ad; i++)
      act[i] = 2.4f * srl_hash_uniform(seed * 1000 + (uint64_t)t, (uint64_t)i) - 1.2f;
    srl_step rs, ls;
    int rc = srl_env_step(remote, act, ro, &rs);
    CHECK_OK(rc);
    CHECK_OK(srl_env_step(local, act, lo, &ls));
    if (rc) break;
    int same = !memcmp(ro, lo, sizeof(float) * (size_t)od) && rs.reward == ls.reward &&
               rs.cost == ls.cost && rs.terminated == ls.terminated &&
               rs.truncated == ls.truncated && rs.info.raw_cost == ls.info.raw_cost &&
               rs.info.goal_met == ls.info.goal_met && rs.info.diverged == ls.info.diverged &&
               rs.info.x_velocity == ls.info.x_velocity;
    if (!same) {
      fprintf(stderr, "  seed %llu step %d differs: reward %.9g vs %.9g\n",
              (unsigned long long)seed, t, (double)rs.reward, (double)ls.reward);
      CHECK(same);
      break;
    }
    if (ls.terminated || ls.truncated) {
      t++;
      break;
    }
  }
  return t;
}


TEST(remote_stepping_equals_local_simple_point_goal) {
  bg_server b;
  srl_env_server_config cfg = {.env_id = "SimplePointGoal", .bind = ipc("pg")};
  CHECK_OK(bg_start(&b, &cfg));
  char id[320];
  snprintf(id, sizeof id, "remote:%s", srl_env_server_endpoint(b.s));
  srl_env *r = NULL, *l = NULL;
  CHECK_OK(srl_env_create(&r, id, "timeout_ms: 2000\nheartbeat_ms: 0\nname: test"));
  CHECK_OK(srl_env_create(&l, "SimplePointGoal", NULL));
  if (r && l) {
    CHECK(!strncmp(r->id, "remote:ipc://", 13));
    CHECK_EQ_INT(r->obs_space.dim, l->obs_space.dim);
    CHECK_EQ_INT(r->act_space.dim, l->act_space.dim);
    CHECK_EQ_INT(r->max_episode_steps, l->max_episode_steps);
    CHECK(!memcmp(r->act_space.low, l->act_space.low, sizeof(float) * 2));
    CHECK(!memcmp(r->act_space.high, l->act_space.high, sizeof(float) * 2));
    CHECK(!memcmp(r->obs_space.high, l->obs_space.high, sizeof(float) * 8));
    int total = 0;
    for (uint64_t seed = 1; seed <= 4; seed++) total += compare_episode(r, l, seed * 17, 400);
    CHECK(total >= 4 * 10);
    // the registered time limit reaches the client through the server: 150 steps at most
    CHECK(total <= 4 * 150);
  }
  srl_env_destroy(r);
  srl_env_destroy(l);
  srl_env_server_stats st;
  srl_env_server_get_stats(b.s, &st);
  CHECK_EQ_INT(st.sessions, 0);  // destroying the env closed its session
  CHECK_EQ_INT(st.closes, 1);
  bg_stop(&b);
}


TEST(remote_stepping_equals_local_mujoco_over_tcp) {
  bg_server b;
  srl_env_server_config cfg = {.env_id = "SafetyHopperVelocity", .bind = "tcp://127.0.0.1:*"};
  CHECK_OK(bg_start(&b, &cfg));
  if (!b.s) return;
  CHECK(!strncmp(srl_env_server_endpoint(b.s), "tcp://127.0.0.1:", 16));
  char id[320];
  snprintf(id, sizeof id, "remote:%s", srl_env_server_endpoint(b.s));
  srl_env *r = NULL, *l = NULL;
  CHECK_OK(srl_env_create(&r, id, "heartbeat_ms: 0"));
  CHECK_OK(srl_env_create(&l, "SafetyHopperVelocity", NULL));
  if (r && l) {
    CHECK_EQ_INT(r->max_episode_steps, 1000);
    int steps = compare_episode(r, l, 5, 150) + compare_episode(r, l, 6, 150);
    CHECK(steps >= 20);
  }
  srl_env_destroy(r);
  srl_env_destroy(l);
  bg_stop(&b);
}


//---- a dropped reply ------------------------------------------------------------------------

// a server loop owned by the test: it drops the reply to the drop_at-th STEP once
typedef struct lossy {
  srl_env_server *s;
  void *ctx, *sock;
  int drop_at, steps_seen, dropped;
  volatile sig_atomic_t stop;
} lossy;


static void *lossy_main(void *arg) {
  lossy *x = arg;
  static uint8_t rx[4096];
  srl_wire_route route;
  srl_wire_msg m;
  while (!x->stop) {
    int rc = srl_wire_recv(x->sock, &route, &m, rx, sizeof rx, 50);
    if (rc == SRL_ETIMEOUT) continue;
    if (rc) {
      srl_wire_send_error(x->sock, &route, &m, rc, srl_errmsg());
      continue;
    }
    srl_env_server_reply reply;
    srl_env_server_handle(x->s, &m, &reply);
    if (m.h.type == SRL_WIRE_STEP && ++x->steps_seen == x->drop_at && !x->dropped) {
      x->dropped = 1;
      continue;  // lost on the way back
    }
    srl_wire_send(x->sock, &route, &reply.h, reply.frame);
  }
  return NULL;
}


TEST(retried_step_does_not_step_twice) {
  lossy x = {.drop_at = 5};
  srl_env_server_config cfg = {.env_id = "SimplePointGoal"};  // no socket: the test's loop
  CHECK_OK(srl_env_server_create(&x.s, &cfg));
  if (!x.s) return;
  x.ctx = zmq_ctx_new();
  x.sock = zmq_socket(x.ctx, ZMQ_ROUTER);
  srl_wire_socket_defaults(x.sock, 0, -1);
  const char *ep = ipc("lossy");
  CHECK(zmq_bind(x.sock, ep) == 0);
  pthread_t th;
  pthread_create(&th, NULL, lossy_main, &x);

  char id[320];
  snprintf(id, sizeof id, "remote:%s", ep);
  srl_env *r = NULL, *l = NULL;
  CHECK_OK(srl_env_create(&r, id, "timeout_ms: 150\nretries: 3\nheartbeat_ms: 0"));
  CHECK_OK(srl_env_create(&l, "SimplePointGoal", NULL));
  if (r && l) {
    // a long episode: the goal is far, so 20 steps never end it
    float ro[8], lo[8];
    CHECK_OK(srl_env_reset(r, 11, ro));
    CHECK_OK(srl_env_reset(l, 11, lo));
    for (int t = 0; t < 20; t++) {
      float act[2] = {0.7f * srl_hash_uniform(3, (uint64_t)t) - 0.35f, 0.3f};
      srl_step rs, ls;
      double t0 = now_s();
      CHECK_OK(srl_env_step(r, act, ro, &rs));
      double dt = now_s() - t0;
      CHECK_OK(srl_env_step(l, act, lo, &ls));
      CHECK(!memcmp(ro, lo, sizeof ro));  // stepped once, not twice
      CHECK(rs.reward == ls.reward);
      if (t == 4) CHECK(dt >= 0.14 && dt < 1.0);  // the lost reply cost one timeout
      if (ls.terminated || ls.truncated) break;
    }
    srl_remote_env_stats rst;
    CHECK_OK(srl_remote_env_stats_get(r, &rst));
    CHECK_EQ_INT(rst.resends, 1);
    CHECK(rst.reconnects >= 1);
    CHECK_EQ_INT(rst.hellos, 1);
  }
  srl_env_server_stats st;
  srl_env_server_get_stats(x.s, &st);
  CHECK_EQ_INT(st.steps, 20);
  CHECK_EQ_INT(st.replayed, 1);
  CHECK_EQ_INT(x.dropped, 1);
  x.stop = 1;
  pthread_join(th, NULL);
  srl_env_destroy(r);
  srl_env_destroy(l);
  zmq_close(x.sock);
  zmq_ctx_term(x.ctx);
  srl_env_server_destroy(x.s);
}


//---- a dead server ----------------------------------------------------------------------------

TEST(no_server_is_an_error_within_the_timeout) {
  double t0 = now_s();
  srl_env *r = NULL;
  CHECK_ERR(srl_env_create(&r, "remote:ipc:///nonexistent-dir/none", "timeout_ms: 100\nretries: 2"),
            SRL_ETIMEOUT);
  double dt = now_s() - t0;
  CHECK(dt >= 0.19 && dt < 1.0);
  CHECK_ERRMSG("remote env ipc:///nonexistent-dir/none: no reply in 2 tries of 100 ms");
  CHECK(r == NULL);
}


TEST(server_killed_mid_episode_then_restarted) {
  const char *ep = ipc("killed");
  pid_t pid = fork_server("SimplePointGoal", ep);
  CHECK(pid > 0);
  char id[320];
  snprintf(id, sizeof id, "remote:%s", ep);
  srl_env *r = NULL, *l = NULL;
  CHECK_OK(srl_env_create(&r, id, "timeout_ms: 300\nretries: 2\nheartbeat_ms: 0"));
  CHECK_OK(srl_env_create(&l, "SimplePointGoal", NULL));
  if (!r || !l) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    srl_env_destroy(r);
    srl_env_destroy(l);
    return;
  }
  float obs[8];
  srl_step st;
  float act[2] = {0.2f, -0.1f};
  CHECK_OK(srl_env_reset(r, 3, obs));
  for (int t = 0; t < 3; t++) CHECK_OK(srl_env_step(r, act, obs, &st));

  // killed: the next step fails after 2 tries of 300 ms, with a message saying so
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  double t0 = now_s();
  CHECK_ERR(srl_env_step(r, act, obs, &st), SRL_ETIMEOUT);
  double dt = now_s() - t0;
  CHECK(dt >= 0.55 && dt < 1.5);
  CHECK_ERRMSG("no reply in 2 tries of 300 ms");
  CHECK_ERRMSG(ep);

  // restarted: the lost episode cannot go on (the server says so, then the client does), the
  // next reset opens a new session and the new episode equals a local one
  pid = fork_server("SimplePointGoal", ep);
  CHECK_ERR(srl_env_step(r, act, obs, &st), SRL_ENOTFOUND);
  CHECK_ERRMSG("unknown session");
  CHECK_ERR(srl_env_step(r, act, obs, &st), SRL_ESTATE);
  CHECK_ERRMSG("reset to open a new one");
  compare_episode(r, l, 44, 30);
  srl_remote_env_stats rst;
  CHECK_OK(srl_remote_env_stats_get(r, &rst));
  CHECK_EQ_INT(rst.hellos, 2);
  srl_env_destroy(r);
  srl_env_destroy(l);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);  // SIGTERM stops a server cleanly
}


//---- sessions -------------------------------------------------------------------------------

TEST(idle_sessions_end_and_heartbeats_keep_them) {
  bg_server b;
  srl_env_server_config cfg = {
      .env_id = "SimplePointGoal", .bind = ipc("idle"), .idle_timeout_s = 0.3};
  CHECK_OK(bg_start(&b, &cfg));
  if (!b.s) return;
  char id[320];
  snprintf(id, sizeof id, "remote:%s", srl_env_server_endpoint(b.s));
  srl_env *quiet = NULL, *beating = NULL;
  CHECK_OK(srl_env_create(&quiet, id, "heartbeat_ms: 0\ntimeout_ms: 1000"));
  CHECK_OK(srl_env_create(&beating, id, "heartbeat_ms: 80\ntimeout_ms: 1000"));
  if (quiet && beating) {
    float obs[8], act[2] = {0.1f, 0.1f};
    srl_step st;
    CHECK_OK(srl_env_reset(quiet, 1, obs));
    CHECK_OK(srl_env_reset(beating, 1, obs));
    sleep_s(0.9);
    CHECK_ERR(srl_env_step(quiet, act, obs, &st), SRL_ENOTFOUND);
    CHECK_ERRMSG("unknown session");
    CHECK_OK(srl_env_reset(quiet, 2, obs));  // a new session
    CHECK_OK(srl_env_step(quiet, act, obs, &st));
    CHECK_OK(srl_env_step(beating, act, obs, &st));  // kept alive by its heartbeats
    srl_remote_env_stats rst;
    CHECK_OK(srl_remote_env_stats_get(beating, &rst));
    CHECK(rst.heartbeats >= 4);
    CHECK_EQ_INT(rst.hellos, 1);
  }
  srl_env_destroy(quiet);
  srl_env_destroy(beating);
  srl_env_server_stats st;
  srl_env_server_get_stats(b.s, &st);
  CHECK_EQ_INT(st.expired, 1);
  CHECK(st.heartbeats >= 4);
  bg_stop(&b);
}


TEST(session_limit_and_close) {
  bg_server b;
  srl_env_server_config cfg = {.env_id = "SimplePointGoal", .bind = ipc("full"), .max_sessions = 2};
  CHECK_OK(bg_start(&b, &cfg));
  if (!b.s) return;
  char id[320];
  snprintf(id, sizeof id, "remote:%s", srl_env_server_endpoint(b.s));
  srl_env *e[3] = {NULL, NULL, NULL};
  const char *opt = "heartbeat_ms: 0\ntimeout_ms: 1000";
  CHECK_OK(srl_env_create(&e[0], id, opt));
  CHECK_OK(srl_env_create(&e[1], id, opt));
  CHECK_ERR(srl_env_create(&e[2], id, opt), SRL_ERANGE);
  CHECK_ERRMSG("server full: 2 sessions");
  srl_env_destroy(e[0]);  // CLOSE frees a slot
  CHECK_OK(srl_env_create(&e[2], id, opt));
  float obs[8];
  if (e[2]) CHECK_OK(srl_env_reset(e[2], 9, obs));
  srl_env_destroy(e[1]);
  srl_env_destroy(e[2]);
  bg_stop(&b);
}


TEST(bad_ids_and_options) {
  srl_env *r = NULL;
  CHECK_ERR(srl_env_create(&r, "remote:udp://x:1", NULL), SRL_EINVAL);
  CHECK_ERRMSG("tcp://host:port or ipc://path");
  CHECK_ERR(srl_env_create(&r, "remote:ipc:///tmp/x", "timeout: 5"), SRL_ECONFIG);
  CHECK_ERRMSG("unknown key 'timeout'");
  CHECK_ERR(srl_env_create(&r, "remote:ipc:///tmp/x", "server_key: a.key"), SRL_ECONFIG);
  CHECK_ERRMSG("client_cert");
}


//---- images ---------------------------------------------------------------------------------

TEST(render_returns_the_servers_image) {
  // a local render first: without a working renderer there is nothing to compare
  srl_env *l = NULL;
  CHECK_OK(srl_env_create(&l, "SafetyHopperVelocity", NULL));
  if (!l) return;
  float lo[MAXD], ro[MAXD];
  static uint8_t want[24 * 32 * 3], got[24 * 32 * 3], big[48 * 64 * 3];
  CHECK_OK(srl_env_reset(l, 8, lo));
  if (srl_env_render(l, want, 32, 24, NULL) < 0) {
    srl_env_destroy(l);
    SKIP("no offscreen renderer here");
  }
  bg_server b;
  srl_env_server_config cfg = {
      .env_id = "SafetyHopperVelocity", .bind = ipc("img"), .image_width = 32, .image_height = 24};
  CHECK_OK(bg_start(&b, &cfg));
  char id[320];
  snprintf(id, sizeof id, "remote:%s", ipc("img"));
  srl_env *r = NULL, *plain = NULL;
  CHECK_OK(srl_env_create(&r, id, "want_image: true\nheartbeat_ms: 0"));
  CHECK_OK(srl_env_create(&plain, id, "heartbeat_ms: 0"));
  if (r && plain) {
    CHECK_ERR(srl_env_render(r, got, 32, 24, NULL), SRL_ESTATE);  // nothing received yet
    CHECK_OK(srl_env_reset(r, 8, ro));
    CHECK_OK(srl_env_render(r, got, 32, 24, NULL));
    CHECK(!memcmp(got, want, sizeof want));
    // a larger request is the same picture, each pixel doubled
    CHECK_OK(srl_env_render(r, big, 64, 48, NULL));
    int same = 1;
    for (int y = 0; y < 48; y++)
      for (int x = 0; x < 64; x++)
        same &= !memcmp(big + 3 * (y * 64 + x), got + 3 * ((y / 2) * 32 + x / 2), 3);
    CHECK(same);
    // after a step the image follows the state
    float act[3] = {0.5f, -0.5f, 0.5f};
    srl_step st;
    for (int k = 0; k < 5; k++) {
      CHECK_OK(srl_env_step(r, act, ro, &st));
      CHECK_OK(srl_env_step(l, act, lo, &st));
    }
    CHECK_OK(srl_env_render(l, want, 32, 24, NULL));
    CHECK_OK(srl_env_render(r, got, 32, 24, NULL));
    CHECK(!memcmp(got, want, sizeof want));
    // a client that did not ask for images cannot render
    CHECK_OK(srl_env_reset(plain, 8, ro));
    CHECK_ERR(srl_env_render(plain, got, 32, 24, NULL), SRL_EUNSUPPORTED);
    CHECK_ERRMSG("want_image");
  }
  srl_env_destroy(r);
  srl_env_destroy(plain);
  srl_env_destroy(l);
  bg_stop(&b);
}


//---- CURVE ----------------------------------------------------------------------------------

static const char *in_tmp(const char *name) {
  static char buf[8][300];
  static int k;
  char *b = buf[k++ % 8];
  snprintf(b, 300, "%s/%s", tmpdir, name);
  return b;
}


TEST(keygen_writes_zpl_certificates) {
  CHECK_OK(srl_curve_keygen(in_tmp("alpha")));
  struct stat sb;
  CHECK(stat(in_tmp("alpha.key_secret"), &sb) == 0 && (sb.st_mode & 0777) == 0600);
  char pub[41], pub2[41], sec[41];
  CHECK_OK(srl_curve_load(in_tmp("alpha.key"), pub, NULL));
  CHECK_OK(srl_curve_load(in_tmp("alpha.key_secret"), pub2, sec));
  CHECK(!strcmp(pub, pub2));
  char derived[41];
  CHECK(zmq_curve_public(derived, sec) == 0 && !strcmp(derived, pub));
  CHECK_ERR(srl_curve_load(in_tmp("alpha.key"), pub, sec), SRL_EFORMAT);
  CHECK_ERRMSG("public certificate");
  // the layout: the comment header, the sections, the quoted key
  FILE *f = fopen(in_tmp("alpha.key"), "r");
  char text[1024] = {0};
  if (f) {
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
  }
  CHECK(!strncmp(text, "#   ****  Generated by saferl keygen  ****\n", 43));
  CHECK(strstr(text, "\nmetadata\ncurve\n    public-key = \"") != NULL);
  CHECK(strstr(text, "secret-key") == NULL);
  // a broken key names its line
  FILE *g = fopen(in_tmp("broken.key"), "w");
  if (g) {
    fputs("metadata\ncurve\n    public-key = \"tooshort\"\n", g);
    fclose(g);
  }
  CHECK_ERR(srl_curve_load(in_tmp("broken.key"), pub, NULL), SRL_EFORMAT);
  CHECK_ERRMSG("broken.key:3:");

  // an allow-list key may hold '#' (a Z85 character); a comment needs a blank before it
  unsigned char bin[32], back[2][32];
  char z85[41] = "";
  for (uint64_t k = 0; !strchr(z85, '#') && k < 1000; k++) {
    for (int i = 0; i < 32; i++) bin[i] = (unsigned char)srl_hash64(k * 32 + (uint64_t)i);
    zmq_z85_encode(z85, bin, 32);
  }
  CHECK(strchr(z85, '#') != NULL);
  FILE *al = fopen(in_tmp("allow_hash.txt"), "w");
  if (al) {
    fprintf(al, "# a list\n  %s # with a comment\n%s\n", z85, pub);
    fclose(al);
  }
  int n = 0;
  CHECK_OK(srl_curve_load_allow_list(in_tmp("allow_hash.txt"), back, 2, &n));
  CHECK_EQ_INT(n, 2);
  CHECK(!memcmp(back[0], bin, 32));
  unlink(in_tmp("allow_hash.txt"));
}


TEST(curve_admits_listed_keys_only) {
  CHECK_OK(srl_curve_keygen(in_tmp("server")));
  CHECK_OK(srl_curve_keygen(in_tmp("client")));
  CHECK_OK(srl_curve_keygen(in_tmp("intruder")));
  char pub[41];
  CHECK_OK(srl_curve_load(in_tmp("client.key"), pub, NULL));
  FILE *f = fopen(in_tmp("allow.txt"), "w");
  if (f) {
    fprintf(f, "# clients admitted\n\n%s   # the test client\n", pub);
    fclose(f);
  }
  long long admitted0, refused0;
  srl_curve_zap_counts(&admitted0, &refused0);

  bg_server b;
  srl_env_server_config cfg = {.env_id = "SimplePointGoal",
                               .bind = "tcp://127.0.0.1:*",
                               .curve_secret = in_tmp("server.key_secret"),
                               .allow_list = in_tmp("allow.txt")};
  CHECK_OK(bg_start(&b, &cfg));
  if (!b.s) return;
  char id[320], opt[1200];
  snprintf(id, sizeof id, "remote:%s", srl_env_server_endpoint(b.s));

  // the listed client steps as usual
  snprintf(opt, sizeof opt, "server_key: %s\nclient_cert: %s\nheartbeat_ms: 0",
           in_tmp("server.key"), in_tmp("client.key_secret"));
  srl_env *r = NULL;
  CHECK_OK(srl_env_create(&r, id, opt));
  if (r) {
    float obs[8], act[2] = {0.5f, 0.5f};
    srl_step st;
    CHECK_OK(srl_env_reset(r, 1, obs));
    CHECK_OK(srl_env_step(r, act, obs, &st));
  }
  srl_env_destroy(r);

  // an unlisted key and a plain client get no reply: an error within timeout·retries
  snprintf(opt, sizeof opt,
           "server_key: %s\nclient_cert: %s\nheartbeat_ms: 0\ntimeout_ms: 200\nretries: 2",
           in_tmp("server.key"), in_tmp("intruder.key_secret"));
  double t0 = now_s();
  srl_env *bad = NULL;
  CHECK_ERR(srl_env_create(&bad, id, opt), SRL_ETIMEOUT);
  CHECK_ERRMSG("refused this client's CURVE key");
  CHECK(now_s() - t0 < 1.5);
  CHECK_ERR(srl_env_create(&bad, id, "heartbeat_ms: 0\ntimeout_ms: 200\nretries: 2"), SRL_ETIMEOUT);
  CHECK_ERRMSG("no reply in 2 tries of 200 ms");
  long long admitted, refused;
  srl_curve_zap_counts(&admitted, &refused);
  CHECK(admitted - admitted0 >= 1);
  CHECK(refused - refused0 >= 1);
  srl_env_server_stats st;
  srl_env_server_get_stats(b.s, &st);
  CHECK_EQ_INT(st.hellos, 1);  // only the listed client reached the server
  bg_stop(&b);

  // a malformed allow-list stops the server from starting, naming the line
  f = fopen(in_tmp("bad_allow.txt"), "w");
  if (f) {
    fprintf(f, "%s\nnot-a-key\n", pub);
    fclose(f);
  }
  srl_env_server_config bad_cfg = cfg;
  bad_cfg.allow_list = in_tmp("bad_allow.txt");
  srl_env_server *s = NULL;
  CHECK_ERR(srl_env_server_create(&s, &bad_cfg), SRL_EFORMAT);
  CHECK_ERRMSG("bad_allow.txt:2:");
}


// remove the files the tests left in tmpdir
static void cleanup(void) {
  const char *names[] = {"pg",
                         "lossy",
                         "killed",
                         "idle",
                         "full",
                         "img",
                         "alpha.key",
                         "alpha.key_secret",
                         "broken.key",
                         "server.key",
                         "server.key_secret",
                         "client.key",
                         "client.key_secret",
                         "intruder.key",
                         "intruder.key_secret",
                         "allow.txt",
                         "bad_allow.txt"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) unlink(in_tmp(names[i]));
  rmdir(tmpdir);
}


int main(void) {
  alarm(120);  // no test may hang
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(remote_stepping_equals_local_simple_point_goal);
  RUN(remote_stepping_equals_local_mujoco_over_tcp);
  RUN(retried_step_does_not_step_twice);
  RUN(no_server_is_an_error_within_the_timeout);
  RUN(server_killed_mid_episode_then_restarted);
  RUN(idle_sessions_end_and_heartbeats_keep_them);
  RUN(session_limit_and_close);
  RUN(bad_ids_and_options);
  RUN(render_returns_the_servers_image);
  RUN(keygen_writes_zpl_certificates);
  RUN(curve_admits_listed_keys_only);
  cleanup();
  return TEST_REPORT();
}
