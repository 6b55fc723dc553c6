// smartasync/blocking_context.hpp - declare an execution context whose threads exist to block.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_BLOCKING_CONTEXT_HPP
#define SMARTASYNC_BLOCKING_CONTEXT_HPP

#include "smartasync/config.hpp"
#include "smartasync/this_thread.hpp"
#include "smartasync/detail/scheduler_set.hpp"

#include SMARTASYNC_ASIO_HEADER(detail/scheduler.hpp)
#include SMARTASYNC_ASIO_HEADER(execution_context.hpp)

#include <utility>

namespace SMARTASYNC_NAMESPACE {

namespace detail {

// Lives in the declared context: registers its scheduler, and unregisters it when the context
// shuts down, so a dead context's address is never matched.
class blocking_context_service : public asio::execution_context::service {
public:
  using key_type = blocking_context_service;
  static inline asio::execution_context::id id;

  explicit blocking_context_service(asio::execution_context& context)
      : asio::execution_context::service(context),
        scheduler_(&asio::use_service<asio::detail::scheduler>(context)) {
    blocking_contexts::instance().add(scheduler_);
  }
  ~blocking_context_service() override { unregister(); }

private:
  void shutdown() override { unregister(); }
  void unregister() {
    if (!scheduler_)
      return;
    blocking_contexts::instance().remove(std::exchange(scheduler_, nullptr));
  }
  const asio::detail::thread_context* scheduler_;
};

} // namespace detail

/// Declares that `context`'s threads exist to run blocking work.
/**
 * A thread running an Asio execution context (`io_context::run`, an `asio::thread_pool`
 * thread, a strand on either) counts as an event loop: a blocking call there stalls every
 * other handler of that context, so the sync form of a wrapper reports it (or throws, under
 * loop_call_policy::strict) and a full pool parks its submissions instead of blocking.
 * Some programs dedicate a context to blocking work instead, typically an `asio::thread_pool`
 * whose handlers call databases. Declared here, its threads are treated as plain threads:
 * the sync form runs inline without a report, block_on is not reported, and a submission to
 * a full pool with full_policy::wait blocks the thread.
 *
 * The declaration lasts as long as the context (it is a service of the context).
 * Declaring the same context again has no further effect.
 *
 * @par Requirements
 * `context` is an `asio::io_context` or an `asio::thread_pool` (a context that runs Asio's
 * scheduler).
 *
 * @par Example
 * @code
 * asio::thread_pool legacy_pool{8};
 * smartasync::allow_blocking(legacy_pool);
 * asio::post(legacy_pool, [&] { auto rows = search("asio"); }); // inline, no report
 * @endcode
 */
inline void allow_blocking(asio::execution_context& context) {
  asio::use_service<detail::blocking_context_service>(context);
}

namespace this_thread {

/// True when a blocking call on this thread stalls no event loop: the thread runs no Asio
/// execution context, or only contexts declared with allow_blocking().
/**
 * @par Cost
 * One thread-local load off a loop; on a loop thread, one atomic load unless some context was
 * declared.
 */
inline bool may_block() noexcept { return detail::may_block_here(); }

} // namespace this_thread

} // namespace smartasync

#endif // SMARTASYNC_BLOCKING_CONTEXT_HPP
