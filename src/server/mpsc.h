/* mpsc.h - lock-free handoff between threads: an intrusive multi-producer,
 * single-consumer list and the wake-up that goes with it.
 *
 * Contract:
 * - Any thread may mpsc_push_chain(); only the owner calls mpsc_take().
 *   mpsc_take() returns every pushed node in push order (FIFO) and leaves
 *   the list empty. Nodes are linked through a `struct mpsc_node` member.
 * - A waker pairs a consumer's "I am about to sleep" flag with an eventfd
 *   the consumer's io_uring always has a read posted on. Producer: push,
 *   then waker_kick(). Consumer: waker_sleep_begin(), check its lists,
 *   sleep only if they are empty, waker_sleep_end() on waking. The
 *   seq_cst store/load pairs make a lost wake-up impossible: either the
 *   producer sees the flag and writes the eventfd, or the consumer sees
 *   the node.
 */
#ifndef DV_SERVER_MPSC_H
#define DV_SERVER_MPSC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

struct mpsc_node {
	struct mpsc_node *next;
};

struct mpsc {
	_Atomic(struct mpsc_node *) head; /* newest first */
};

/* first..last already linked through next (first pushed first). */
static inline void mpsc_push_chain(struct mpsc *q, struct mpsc_node *first, struct mpsc_node *last)
{
	/* The chain is stored newest-first: reverse order on take. */
	struct mpsc_node *old = atomic_load_explicit(&q->head, memory_order_relaxed);
	/* Reverse first..last so last is the newest (head side). */
	struct mpsc_node *prev = NULL, *n = first;
	while (n) {
		struct mpsc_node *next = n == last ? NULL : n->next;
		n->next = prev;
		prev = n;
		n = next;
	}
	/* prev == last now heads a newest-first chain ending at first. */
	do {
		first->next = old;
	} while (!atomic_compare_exchange_weak_explicit(&q->head, &old, last, memory_order_seq_cst,
							memory_order_relaxed));
}

static inline void mpsc_push(struct mpsc *q, struct mpsc_node *n) { mpsc_push_chain(q, n, n); }

static inline bool mpsc_empty(struct mpsc *q)
{
	return atomic_load_explicit(&q->head, memory_order_seq_cst) == NULL;
}

/* Everything pushed so far, oldest first, linked through next. */
static inline struct mpsc_node *mpsc_take(struct mpsc *q)
{
	if (atomic_load_explicit(&q->head, memory_order_relaxed) == NULL)
		return NULL;
	/* acquire: the pushers' writes to the nodes happen before we read them. */
	struct mpsc_node *n = atomic_exchange_explicit(&q->head, NULL, memory_order_acquire);
	struct mpsc_node *prev = NULL;
	while (n) {
		struct mpsc_node *next = n->next;
		n->next = prev;
		prev = n;
		n = next;
	}
	return prev;
}

struct waker {
	_Atomic int sleeping;
	int efd; /* eventfd the consumer's ring reads */
};

static inline void waker_kick(struct waker *w)
{
	if (atomic_load_explicit(&w->sleeping, memory_order_seq_cst)) {
		uint64_t one = 1;
		ssize_t r = write(w->efd, &one, sizeof(one));
		(void)r; /* EAGAIN: the counter is already non-zero, a wake-up is due anyway */
	}
}

static inline void waker_sleep_begin(struct waker *w) { atomic_store_explicit(&w->sleeping, 1, memory_order_seq_cst); }
static inline void waker_sleep_end(struct waker *w) { atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed); }

#endif
