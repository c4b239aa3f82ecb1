package faultaround

// sysUserfaultfd is userfaultfd(2) (include/uapi/asm-generic/unistd.h).
const sysUserfaultfd = 282
