/* Entry points and exception stubs of the hostile guest (see guest.h). The VMM starts the boot
 * vCPU at _start and every other vCPU at ap_start (rsp, rdi = argument, rsi = vCPU index set from
 * the start request). Interrupts stay disabled for the whole run, so the stubs only ever see
 * exceptions and software interrupts. */
.code64
.section .text.entry, "ax"
.globl _start
_start:
    leaq cpu_stacks+16384(%rip), %rsp   /* vCPU 0's stack: the first of guest.cpp's cpu_stacks */
    xorl %ebp, %ebp
    call boot_main                      /* (boot info, vCPU index); does not return */
1:  hlt
    jmp 1b

.globl ap_start
ap_start:
    xorl %ebp, %ebp
    call ap_main                        /* (argument, vCPU index); does not return */
2:  hlt
    jmp 2b

/* 256 stubs of 16 bytes: push a zero error code where the CPU pushes none, then the vector. */
.macro STUB n
0:
    .if (\n == 8) || (\n == 10) || (\n == 11) || (\n == 12) || (\n == 13) || (\n == 14) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
    .else
    pushq $0
    .endif
    pushq $\n
    jmp trap_common
    .org 0b + 16
.endm

.section .text
.globl trap_stubs
.balign 16
trap_stubs:
.altmacro
.set vector, 0
.rept 256
    STUB %vector
    .set vector, vector + 1
.endr

trap_common:
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
    movq %rsp, %rbx
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
    addq $16, %rsp
    iretq

.section .note.GNU-stack,"",@progbits
