/* Entry stubs for all 256 vectors. Each stub is 16 bytes: it pushes a dummy error code where the
 * CPU pushes none, then the vector number, and joins interrupt_common, which saves the
 * general-purpose registers (building a TrapFrame, see trap_frame.h), calls handle_trap(frame) on a
 * 16-byte aligned stack, restores the registers and returns with iretq. On PVM hosts the frame is
 * the same native frame and iretq is emulated by the host, restoring the virtual interrupt flag
 * from the saved RFLAGS.IF. */
.code64
.section .text

.macro VECTOR_STUB n
0:
    .if (\n == 8) || (\n == 10) || (\n == 11) || (\n == 12) || (\n == 13) || (\n == 14) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
    .else
    pushq $0
    .endif
    pushq $\n
    jmp interrupt_common
    .org 0b + 16              /* pads to 16 bytes; the assembler refuses if a stub is longer */
.endm

.globl interrupt_vector_stubs
.balign 16
interrupt_vector_stubs:
.altmacro
.set vector, 0
.rept 256
    VECTOR_STUB %vector
    .set vector, vector + 1
.endr

interrupt_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    cld
    movq %rsp, %rdi
    movq %rsp, %rbx          /* callee-saved: the unaligned frame pointer survives the call */
    andq $-16, %rsp
    call handle_trap
    movq %rbx, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp            /* vector and error code */
    iretq

.section .rodata
.globl interrupt_stub_size
.balign 4
interrupt_stub_size:
    .long 16

.section .note.GNU-stack,"",@progbits
