/* The code the VMM copies into the guest's hypercall page (hvkvm/abi/hypercall.h). Assembled into
 * the VMM as data; it must be position-independent and fit in one page. Never `vmcall`: that
 * hangs the vCPU on PVM hosts. Instead:
 *   - every hypercall can go to the VMM with `out` to kHypercallPort (0xe0): a user-space exit in
 *     which the VMM reads RCX/RDX/R8 and writes the result to RAX;
 *   - SignalEvent (fast, flag 0) and KickVp first try an exit-free doorbell: `out` of the
 *     connection id / VP index to a port where the VMM registered ioeventfds matched on that
 *     value, completed in the host kernel. If no ioeventfd matches, the write exits to the VMM,
 *     which performs the call itself, puts the result in RAX and sets RCX to 1 to say so (RCX, not
 *     RIP: on PVM hosts the completion of an emulated `out` rewrites RIP). */
.code64
.section .rodata
.balign 16
.globl hvkvm_hypercall_page_code, hvkvm_hypercall_page_code_end
/* The page's three `out` instructions: the only exits the VMM answers in registers. */
.globl hvkvm_hypercall_page_hypercall_out, hvkvm_hypercall_page_signal_event_out, hvkvm_hypercall_page_kick_vp_out
hvkvm_hypercall_page_code:
    cmpq $0x1005d, %rcx          /* SignalEvent | fast, no reps, no reserved bits */
    je signal_event
    cmpq $0x10f01, %rcx          /* KickVp | fast */
    je kick_vp
generic:
hvkvm_hypercall_page_hypercall_out:
    outl %eax, $0xe0
    ret
signal_event:
    movq %rdx, %rax
    shrq $32, %rax               /* a flag number or reserved bits: leave it to the VMM */
    jnz generic
    movl %edx, %eax
    xorl %ecx, %ecx
hvkvm_hypercall_page_signal_event_out:
    outl %eax, $0xe4
    jmp doorbell_done
kick_vp:
    movq %rdx, %rax
    shrq $32, %rax               /* VP indices are 32-bit; anything above is for the VMM to refuse */
    jnz generic
    movl %edx, %eax
    xorl %ecx, %ecx
hvkvm_hypercall_page_kick_vp_out:
    outl %eax, $0xe8
doorbell_done:
    testl %ecx, %ecx
    jnz 1f                       /* the VMM answered: RAX holds its result */
    xorl %eax, %eax              /* completed by an ioeventfd: HV_STATUS_SUCCESS */
1:  ret
hvkvm_hypercall_page_code_end:

.section .note.GNU-stack,"",@progbits
