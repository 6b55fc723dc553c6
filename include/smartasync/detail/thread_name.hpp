// smartasync/detail/thread_name.hpp - names the library's threads, where the platform can.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_THREAD_NAME_HPP
#define SMARTASYNC_DETAIL_THREAD_NAME_HPP

#include "smartasync/config.hpp"

#if defined(__linux__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace SMARTASYNC_NAMESPACE::detail {

// What the library's threads are called in top -H, ps -L, gdb, perf and core dumps. Linux shows
// at most 15 characters, so each name fits.
inline constexpr const char* worker_thread_name = "sa.pool-worker";
inline constexpr const char* grower_thread_name = "sa.pool-grower";
inline constexpr const char* watcher_thread_name = "sa.pool-watcher";
inline constexpr const char* background_thread_name = "sa.background";

// Names the calling thread. Without a name, a thread shows its creator's (on Linux: the
// program's, or whatever a hook named the thread that started it), which tells a reader
// nothing. Best effort: elsewhere, and on failure, the thread keeps the name it had.
inline void name_this_thread(const char* name) noexcept {
#if defined(__linux__)
  (void)pthread_setname_np(pthread_self(), name);
#elif defined(__APPLE__)
  (void)pthread_setname_np(name);
#else
  (void)name;
#endif
}

} // namespace SMARTASYNC_NAMESPACE::detail

#endif // SMARTASYNC_DETAIL_THREAD_NAME_HPP
