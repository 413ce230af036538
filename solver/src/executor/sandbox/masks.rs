//! The /proc and /sys paths a container must not read or write: runc's defaults as Docker
//! configures them. Masked paths get /dev/null (files) or an empty read-only tmpfs
//! (directories) on top; read-only paths become read-only binds of themselves. Paths the
//! kernel does not have are skipped.

/// Hidden entirely: kernel memory, keys, timers, firmware and hardware details.
/// The list plus `/proc/interrupts` and `/sys/devices/virtual/powercap`, which
/// current Docker masks too.
pub(super) const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Readable but not writable: sysctls, IRQ affinity, sysrq.
pub(super) const READONLY_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
