/* The page the guest hands to the VMM as its hypercall page (HV_X64_MSR_HYPERCALL). It lives in
 * the kernel's text segment, so the guest maps it read+execute only; the VMM fills it through its
 * own mapping of guest RAM when the guest enables it. Until then it is int3 padding. */
.section .text.hypercall_page, "ax"
.balign 4096
.globl hypercall_page
hypercall_page:
    .fill 4096, 1, 0xcc
.section .note.GNU-stack,"",@progbits
