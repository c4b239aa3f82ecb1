package faultaround

// sysUserfaultfd is userfaultfd(2) (arch/x86/entry/syscalls/syscall_64.tbl).
const sysUserfaultfd = 323
