// interrupt.h: SIGINT and SIGTERM as a request to stop at the next safe point, where a trainer
// saves a checkpoint and returns SRL_EINTERRUPTED.
//
// The first signal sets the request. Copies arriving within a second belong to the same request:
// `timeout` signals both its child and its process group, so one timeout or one `kill` of a
// group can deliver the signal twice. A signal after that acts as usual, so pressing Ctrl-C
// again still ends a process that does not stop by itself.
#ifndef SRL_CORE_INTERRUPT_H
#define SRL_CORE_INTERRUPT_H

// Installs the handlers for SIGINT and SIGTERM and clears any earlier request.
int srl_interrupt_install(void);

// The signal that requested a stop, or 0 when none did.
int srl_interrupt_signal(void);

#endif
