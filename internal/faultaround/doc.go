// Package faultaround keeps the kernel from mapping pages of the
// executable that the program never touches, so that the executor's
// resident set counts the code and tables it uses rather than every 64 KiB
// around them.
//
// On a read fault in a file mapping, Linux maps not only the faulting page
// but every page of the file's page cache in the aligned 64 KiB window
// around it (fault-around: mm/memory.c, do_read_fault and do_fault_around;
// fault_around_bytes, 64 KiB by default, is a machine-wide debugfs knob).
// Go's linker lays functions out by package, not by use, and the function
// tables (.gopclntab) and type data (.rodata) are read sparsely, so one
// touched page costs 16 pages of resident set: the executor's 6.5 MiB of
// code measured 4.5 MiB resident, nearly all of it in whole 64 KiB windows
// (BenchmarkExecutorFootprint; README, "Executor overhead to reserve in
// Aurora"). madvise(MADV_RANDOM) does not change this on Linux 6.18: it
// turns off read-ahead, not fault-around.
//
// The kernel skips fault-around in a mapping registered with a
// userfaultfd for write-protection (should_fault_around calls
// uffd_disable_fault_around, include/linux/userfaultfd_k.h). Since Linux
// 6.7 a userfaultfd with UFFD_FEATURE_WP_ASYNC may register any mapping for
// write-protection alone (fs/userfaultfd.c, vma_can_userfault), and nothing
// is ever write-protected unless UFFDIO_WRITEPROTECT asks: registering the
// executable's read-only mappings changes nothing but fault-around. Read
// faults then map one page each. Nothing mapped is thrown away: the pages
// the runtime touched before this package's init stay mapped, 64 KiB at a
// time, and the page cache holds the file as before; what changes is how
// many of its pages count in this process's resident set.
//
// The package does its work in init, as early as its imports allow
// (syscall and unsafe only), because most pages are touched during start-up.
// DEWAR_FAULT_AROUND=kernel in the environment keeps the kernel's
// fault-around. Where userfaultfd is missing or refused (before Linux 6.7,
// a seccomp profile, vm.unprivileged_userfaultfd), nothing changes and
// Status says why.
package faultaround

// EnvVar names the environment variable that keeps the kernel's
// fault-around when set to "kernel".
const EnvVar = "DEWAR_FAULT_AROUND"
