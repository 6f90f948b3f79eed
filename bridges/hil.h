// hil.h: hardware in the loop: a fixed-rate control loop (absolute-time sleeps on
// CLOCK_MONOTONIC) between a plant and a policy, with the latency bookkeeping real-time work
// needs: wake jitter, compute time, round trip p50/p99/max, deadline misses and fallbacks, in
// preallocated histograms; and a JSON report.
//
// The plant is any env id srl_env_create accepts: `remote:tcp://host:port` or `remote:ipc://path`
// for a plant in another process or machine (a served env standing in for hardware, or a bridge
// to the hardware itself), or a registered id run in-process. The policy is either a policy
// server endpoint (tcp:// or ipc://, bridges/policy_server.h) reached over the wire protocol's
// ACT / ACTION messages, or a run directory / checkpoint run in-process behind the same staleness,
// fallback, deadline and latch logic as the server's.
//
// One cycle, at wake time w_k = start + k·period:
//   1. sleep until w_k (clock_nanosleep TIMER_ABSTIME); wake jitter = wake − w_k;
//   2. the plant: the first cycle and the cycle after an episode ended reset it (seeds seed,
//      seed + 1, ...), every other cycle steps it with the action of the cycle before (the
//      policy's [-1, 1] action mapped linearly onto the plant's bounds, as in training);
//   3. the policy: ACT with the fresh observation (t_ns = when the plant returned it, seq + 1);
//      the reply must arrive before the deadline (deadline_ns after the send; default: the next
//      wake); a late or missing reply is a deadline miss and the previous action is held (a
//      reply that comes later is recognised by its seq and dropped);
//   4. compute time = end of the cycle's work − wake; work ending after w_{k+1} is an overrun,
//      and whole periods already past are skipped (counted), so the loop never bursts to catch
//      up.
// Each missed cycle (overrun or deadline miss) gets one likely cause, checked in this order: the
// wake came more than half a period late (the scheduler or the machine), the policy reported a
// compute time over half its budget (the policy), the plant took more than half a period (the
// plant), else the transport (the wire and the peers' scheduling).
//
// With realtime, the loop's thread runs SCHED_FIFO, the ZeroMQ I/O threads its connections
// started run one priority lower, and memory is locked; with pin, all of them run on one CPU,
// which keeps every hand-off local (cross-CPU wake-ups are what costs most in a virtual machine;
// pin the servers to the same CPU). Whatever is refused is reported, never fatal.
//
// saferl allocates nothing in the loop: every buffer and histogram is sized at creation (libzmq
// itself copies each sent frame larger than 33 bytes, such as the 56-byte header, into a message
// of its own).
#ifndef SRL_BRIDGES_HIL_H
#define SRL_BRIDGES_HIL_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

//---- latency histogram ------------------------------------------------------------------------

// Log-linear buckets over nanoseconds: values below 64 exactly, above that 64 sub-buckets per
// power of two (relative resolution 1/64, error of a percentile ≤ 1/128 of its value), up to
// 2^41 ns (about 36 minutes; larger values land in the last bucket). Fixed size, no allocation.
#define SRL_LAT_SUB 64
#define SRL_LAT_TOP 41
#define SRL_LAT_BUCKETS (SRL_LAT_SUB + (SRL_LAT_TOP - 6) * SRL_LAT_SUB)

typedef struct srl_lat_hist {
  uint64_t count;
  uint64_t min, max;  // exact (min UINT64_MAX while empty)
  double sum;         // for the mean
  uint32_t bucket[SRL_LAT_BUCKETS];
} srl_lat_hist;

void srl_lat_reset(srl_lat_hist *h);
void srl_lat_add(srl_lat_hist *h, uint64_t ns);
// The q-quantile (0 ≤ q ≤ 1) in ns: the midpoint of the bucket holding the ⌈q·count⌉-th smallest
// value, clamped into [min, max] (so q = 1 gives max exactly); 0 when empty.
double srl_lat_quantile(const srl_lat_hist *h, double q);
double srl_lat_mean(const srl_lat_hist *h);
// Write {"count": n, "mean": x, "p50": x, "p90": x, "p99": x, "max": x} (ns) into buf; returns the
// length written (as snprintf; never more than cap − 1 characters).
int srl_lat_json(const srl_lat_hist *h, char *buf, size_t cap);

//---- the loop ---------------------------------------------------------------------------------

typedef struct srl_hil_config {
  const char *plant;          // env id: "remote:ipc://..." / "remote:tcp://..." or a registered id
  const char *plant_options;  // YAML options for srl_env_create (NULL: none)
  const char *policy;         // policy server endpoint (has "://"), else a run dir / checkpoint
  double rate_hz;             // control rate (> 0)
  double duration_s;          // run this long (> 0)
  long long deadline_ns;      // the policy's reply deadline after the send (0: the next wake);
                              // in-process also the policy's compute budget
  long long max_age_ns;       // in-process policy: observations older than this are stale (0: off)
  int latch_after;            // in-process policy: consecutive misses that latch (0: never)
  int realtime;               // 1: try SCHED_FIFO at rt_priority (the loop's thread; the I/O
                              // threads of its connections one lower) and mlockall (reported)
  int rt_priority;            // SCHED_FIFO priority (0: 80)
  int pin;                    // 1: run the loop and its I/O threads on CPU `cpu` only
  int cpu;
  uint64_t seed;            // the plant's reset seeds start here
  const char *server_cert;  // CURVE: the policy server's public certificate (NULL: plain)
  const char *client_cert;  // CURVE: this client's secret certificate
  const char *device;       // in-process policy device (NULL: cpu)
} srl_hil_config;

// Counts by the ACTION status of the policy's replies (bridges/policy_server.h's statuses).
typedef struct srl_hil_fallbacks {
  long long total;  // replies flagged FALLBACK
  long long stale, malformed, nonfinite, deadline, latched;
} srl_hil_fallbacks;

typedef struct srl_hil_report {
  char plant_id[256], policy_id[1024];
  int obs_dim, act_dim;
  double rate_hz, duration_s;  // as configured
  long long period_ns, deadline_ns;
  double elapsed_s;  // from the first wake to the end of the last cycle

  // real-time setup
  int sched_fifo;       // 1 when SCHED_FIFO was set
  int io_threads_fifo;  // the connections' I/O threads set SCHED_FIFO (one priority lower)
  int pinned_cpu;       // the CPU the loop was pinned to (-1: none)
  int mlocked;          // 1 when mlockall succeeded
  char rt_note[192];    // what was tried and why it failed ("" when not asked)

  // cycles
  long long cycles;           // cycles run
  long long skipped;          // wake times skipped because the loop was a whole period behind
  long long overruns;         // cycles whose work ended after the next wake time
  long long deadline_misses;  // policy replies not back by the deadline (the action was held)
  long long late_replies;     // replies that came after their deadline and were dropped
  long long policy_errors;    // replies that were ERROR or unreadable (counted as misses)
  // why each missed cycle (overrun or deadline miss) missed, one cause per cycle:
  long long miss_wake;       // the wake itself came more than half a period late (scheduler)
  long long miss_policy;     // the policy's own compute time exceeded the deadline
  long long miss_plant;      // the plant's step took more than half a period
  long long miss_transport;  // none of those: the wire, the peer's scheduling
  srl_hil_fallbacks fallbacks;
  int latched;               // the last reply carried LATCHED
  long long episodes;        // episodes the plant finished
  long long steps;           // plant steps
  double ret_sum, cost_sum;  // over all steps

  // timings (ns)
  srl_lat_hist jitter;          // wake − scheduled wake
  srl_lat_hist compute;         // the cycle's work: wake → action in hand
  srl_lat_hist rtt;             // ACT sent → ACTION received (replies before the deadline)
  srl_lat_hist plant;           // the plant's step or reset
  srl_lat_hist policy_compute;  // the policy's compute_ns as its status reported it
} srl_hil_report;

typedef struct srl_hil srl_hil;

// Connect to (or create) the plant and the policy, check their dimensions agree (a policy server
// is asked with HELLO), preallocate everything. Nothing runs yet.
int srl_hil_create(srl_hil **out, const srl_hil_config *cfg);
void srl_hil_destroy(srl_hil *h);

// Run the loop for the configured duration (or until srl_hil_request_stop) and fill rep (about
// 100 KB: allocate it, do not put it on a small stack). Returns 0, or the plant's error when a
// plant step fails (rep holds the cycles before it).
int srl_hil_run(srl_hil *h, srl_hil_report *rep);

// Ask a running loop to stop after its current cycle (thread- and signal-safe).
void srl_hil_request_stop(srl_hil *h);

// The report as one JSON object (indented when pretty), newline-terminated.
int srl_hil_report_json(const srl_hil_report *rep, FILE *f, int pretty);

#ifdef __cplusplus
}
#endif
#endif  // SRL_BRIDGES_HIL_H
