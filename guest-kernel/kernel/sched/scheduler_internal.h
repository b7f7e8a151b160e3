// Between scheduler.cpp (switching) and thread.cpp (thread lifecycle); not for other callers.
#pragma once

#include "kernel/sched/thread.h"

namespace hvkvm::guest::sched {

// Completes a switch on the new thread's side: releases the thread switched away from, or, if it
// exited detached, hands it to this CPU's reaper.
void finish_switch(Thread* previous);
void push_zombie(Thread& thread);
Thread* pop_zombie();
// Frees this CPU's exited detached threads (idle thread, interrupts enabled).
void reap_zombies();

}  // namespace hvkvm::guest::sched
