/* Kernel entry for the boot vCPU. The VMM starts it in 64-bit mode at CPL0 with its identity page
 * tables, rdi = boot info GPA, rsi = vCPU index (see hvkvm/abi/boot.h). On PVM hosts every
 * instruction here is emulated until kernel_entry converts the vCPU, so this stays minimal. */
.code64
.section .text.entry, "ax"
.globl _start
_start:
    leaq boot_stack_top(%rip), %rsp
    xorl %ebp, %ebp
    call kernel_entry            /* does not return */
1:  hlt
    jmp 1b

/* Entry for the other vCPUs, started by the VMM on the boot CPU's request with rsp = a stack of
 * their own, rdi = boot info, rsi = vCPU index, and the kernel's page tables. */
.globl secondary_cpu_start
secondary_cpu_start:
    xorl %ebp, %ebp
    call secondary_cpu_entry     /* does not return */
2:  hlt
    jmp 2b

/* Idle with interrupts enabled, without losing a wakeup that lands between enabling and halting.
 * PVM (rdi = address of the virtual interrupt flag byte): set VIF, then hlt; if an interrupt is
 * delivered between the two, the trap handler sees RIP == pvm_halt_instruction and steps over the
 * hlt. Classic: sti's one-instruction interrupt shadow covers the hlt. */
.section .text
.globl pvm_safe_halt, pvm_halt_instruction, classic_safe_halt
pvm_safe_halt:
    movb $1, (%rdi)
pvm_halt_instruction:
    hlt
    ret
classic_safe_halt:
    sti
    hlt
    ret

.section .bss
.balign 16
boot_stack:
    .skip 65536
.globl boot_stack_top
boot_stack_top:

.section .note.GNU-stack,"",@progbits
