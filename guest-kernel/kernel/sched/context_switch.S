/* Thread context switch. The callee-saved registers are pushed on the old thread's stack, the
 * stack pointer is saved in its Thread, and the new thread's registers are popped from its stack.
 *
 *   Thread* switch_context(uint64_t* save_rsp, uint64_t new_rsp, Thread* previous)
 *
 * returns `previous` in the new context (so that it can finish the handover). A new thread's
 * stack is prepared to "return" into thread_entry_trampoline with `previous` in %rax. */
.code64
.section .text
.globl switch_context, thread_entry_trampoline
switch_context:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    movq %rdx, %rax
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret

thread_entry_trampoline:
    movq %rax, %rdi
    xorl %ebp, %ebp
    call thread_start      /* does not return */
    ud2

.section .note.GNU-stack,"",@progbits
