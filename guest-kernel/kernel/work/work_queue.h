// Deferred work: a pool of kernel threads, one per CPU (ideal processor = that CPU, and allowed
// to run only on that CPU's NUMA node), each draining its own queue. Code that must not block (an interrupt handler, a timer callback) or
// should not do slow work in place queues a WorkItem instead.
#pragma once

#include <stdint.h>

#include "lib/intrusive_list.h"

namespace hvkvm::guest::work {

struct WorkItem {
    void (*function)(WorkItem& item) = nullptr;  // runs in a worker thread; may block
    ListNode link;
};

// Creates the workers (after every CPU is online).
void init();

// Queues `item` for the worker of `cpu` (the current CPU by default). The item must stay valid
// until its function has started; an item must not be queued again before then.
void queue(WorkItem& item);
void queue_on(uint32_t cpu, WorkItem& item);
// Queues `item` for a worker of `node`: this CPU's if it belongs to that node, else the node's
// CPUs in turn (this CPU's if the node has none online). A completion that must run where its
// request was issued (I/O completion on the issuing node) records this_cpu().node with the
// request and is queued here.
void queue_on_node(uint32_t node, WorkItem& item);

struct WorkStats {
    uint64_t queued;
    uint64_t completed;
};
WorkStats stats();

}  // namespace hvkvm::guest::work
