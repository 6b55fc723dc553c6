// catalog_sync/thread_priority.hpp - background threads yield the CPU to interactive ones.
// Distributed under the Boost Software License, Version 1.0.
#ifndef CATALOG_SYNC_THREAD_PRIORITY_HPP
#define CATALOG_SYNC_THREAD_PRIORITY_HPP

#if defined(__linux__)
#include <sys/resource.h>
#endif

namespace catalog_sync {

/// Gives the calling thread the nice value `nice` (0 to 19; higher yields more). Only where it
/// applies to one thread (Linux); elsewhere it does nothing, since the same call would lower
/// the whole process. It can fail only for a value out of range or a raise without privilege,
/// and then the thread keeps its priority: a hint, never an error.
inline void set_this_thread_nice(int nice) noexcept {
#if defined(__linux__)
  if (nice != 0)
    (void)::setpriority(PRIO_PROCESS, 0, nice); // 0: the calling thread, on Linux
#else
  (void)nice;
#endif
}

} // namespace catalog_sync

#endif // CATALOG_SYNC_THREAD_PRIORITY_HPP
