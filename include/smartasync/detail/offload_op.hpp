// smartasync/detail/offload_op.hpp - one blocking call travelling through a pool and back.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_OFFLOAD_OP_HPP
#define SMARTASYNC_DETAIL_OFFLOAD_OP_HPP

#include "smartasync/config.hpp"
#include "smartasync/diagnostics.hpp"
#include "smartasync/error.hpp"
#include "smartasync/this_thread.hpp"
#include "smartasync/detail/call_deadline.hpp"
#include "smartasync/detail/completion_service.hpp"
#include "smartasync/detail/context_capture.hpp"
#include "smartasync/detail/pool_core.hpp"
#include "smartasync/detail/pool_op.hpp"
#include "smartasync/detail/scheduler_set.hpp"

#include SMARTASYNC_ASIO_HEADER(associated_allocator.hpp)
#include SMARTASYNC_ASIO_HEADER(associated_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(associated_executor.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_allocator.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_type.hpp)
#include SMARTASYNC_ASIO_HEADER(dispatch.hpp)
#include SMARTASYNC_ASIO_HEADER(execution.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(executor_work_guard.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(system_executor.hpp)

#include <concepts>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <thread>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>

namespace SMARTASYNC_NAMESPACE::detail {

// The associated executor of a handler that has none. A handler without an executor runs on
// the pool worker that finished the work (like a handler of an I/O object on a thread_pool).
struct no_associated_executor {
  friend bool operator==(no_associated_executor, no_associated_executor) noexcept = default;
};

// The io_context whose plain executor `executor` is, or null (a strand, a thread_pool, any other
// executor). Completions into such a context may be batched: running one inside a drain handler
// on that context is what posting it would do.
template <typename Executor>
struct is_io_context_executor : std::false_type {};
template <typename Allocator, std::uintptr_t Bits>
struct is_io_context_executor<asio::io_context::basic_executor_type<Allocator, Bits>>
    : std::true_type {};

template <typename Executor>
asio::io_context* batchable_context(const Executor& executor) noexcept {
  if constexpr (is_io_context_executor<Executor>::value) {
    return &asio::query(executor, asio::execution::context);
  } else {
#if !defined(ASIO_NO_TYPEID)
    // any_io_executor, asio::executor: only the io_context's default executor type is batched.
    using plain = asio::io_context::executor_type;
    if constexpr (requires(const Executor& e) {
                    { e.target_type() == typeid(plain) } -> std::convertible_to<bool>;
                    e.template target<plain>();
                  }) {
      if (executor && executor.target_type() == typeid(plain))
        return &asio::query(*executor.template target<plain>(), asio::execution::context);
    }
#endif
    return nullptr;
  }
}

// Work is a nullary callable, optionally taking a std::stop_token.
template <typename Work>
inline constexpr bool is_stop_aware_v = std::is_invocable_v<Work&, std::stop_token>;

// Work submitted through a serial_lane (serial_lane.hpp) says so: `work.lane()`. The lane is
// only used in expressions that depend on Work, so this header needs no more than its name.
template <typename Work>
inline constexpr bool is_lane_work_v = requires(Work& work) { work.lane(); };

// Whether a terminal cancellation of the running call completes at once and abandons it
// (smartasync::abandon_on_cancel, smart_options::on_cancel) instead of waiting for it.
template <typename Work>
bool abandons_running_call(const Work& work) noexcept {
  if constexpr (requires { { work.abandons_on_cancel() } -> std::convertible_to<bool>; })
    return work.abandons_on_cancel();
  else
    return false;
}

template <typename Work>
struct work_result {
  using type =
      std::conditional_t<is_stop_aware_v<Work>, std::invoke_result<Work&, std::stop_token>,
                         std::invoke_result<Work&>>;
};
template <typename Work>
using work_result_t = std::decay_t<typename work_result<Work>::type::type>;

// Where a call's result waits for its handler. On its way it moves several times (into the
// completion, a batch, the function object an executor stores), inside noexcept code. A result
// that is large, or whose move may throw, therefore lives on the heap and only its pointer
// moves: nothing big is copied onto the worker's stack, and the one move that may throw happens
// where it can still become the operation's exception (see completion).
template <typename R>
consteval bool result_on_heap() {
  if constexpr (std::is_void_v<R>)
    return false;
  else
    return !std::is_nothrow_move_constructible_v<R> || sizeof(R) > 256;
}
template <typename R>
inline constexpr bool result_on_heap_v = result_on_heap<R>();

template <typename R, bool OnHeap = result_on_heap_v<R>>
class result_slot {
public:
  template <typename F>
  void emplace_from(F&& make) {
    value_.emplace(std::forward<F>(make)());
  }
  explicit operator bool() const noexcept { return value_.has_value(); }
  R& operator*() noexcept { return *value_; }
  void reset() noexcept { value_.reset(); }

private:
  std::optional<R> value_;
};

template <typename R>
class result_slot<R, true> {
public:
  template <typename F>
  void emplace_from(F&& make) {
    value_.reset(new R(std::forward<F>(make)())); // the call's prvalue is built in place
  }
  explicit operator bool() const noexcept { return value_ != nullptr; }
  R& operator*() noexcept { return *value_; }
  void reset() noexcept { value_.reset(); }

private:
  std::unique_ptr<R> value_;
};

// The completion signature of an offloaded call returning R.
template <typename R>
struct signature_for_result {
  using type = void(std::exception_ptr, R);
};
template <>
struct signature_for_result<void> {
  using type = void(std::exception_ptr);
};
template <typename R>
using signature_for_result_t = typename signature_for_result<R>::type;

// A stop_source costs an allocation, so only stop-aware callables get one.
template <bool StopAware>
struct op_stop_state {
  void request_stop() noexcept {}
};
template <>
struct op_stop_state<true> {
  std::stop_source source;
  void request_stop() noexcept { source.request_stop(); }
};

// Executors without a context (use_future's promise executor runs inline) need no tracking.
template <typename Executor>
inline constexpr bool executor_has_context_v =
    asio::execution::is_executor<Executor>::value
        ? asio::can_query<Executor, asio::execution::context_t>::value
        : asio::is_executor<Executor>::value;

template <typename Handler>
using handler_executor_t = asio::associated_executor_t<Handler, no_associated_executor>;

// A handler whose executor belongs to an execution context completes into it, so its operation
// is tracked by that context's completion registry.
template <typename Handler>
inline constexpr bool completes_into_context_v =
    !std::is_same_v<handler_executor_t<Handler>, no_associated_executor> &&
    executor_has_context_v<handler_executor_t<Handler>>;

template <typename Handler>
using offload_op_base_t =
    std::conditional_t<completes_into_context_v<Handler>, tracked_op, pool_op>;

template <typename Handler, typename Work>
class offload_op final : public offload_op_base_t<Handler> {
  using base = offload_op_base_t<Handler>;
  using base::state_;

public:
  using base::release;
  using result_type = work_result_t<Work>;
  using executor_type = handler_executor_t<Handler>;
  static constexpr bool has_executor = !std::is_same_v<executor_type, no_associated_executor>;
  static constexpr bool stop_aware = is_stop_aware_v<Work>;
  static constexpr bool on_lane = is_lane_work_v<Work>;

  template <typename H, typename W>
  offload_op(blocking_pool& pool, H&& handler, W&& work)
      : pool_(&pool_access::core(pool)), work_(std::forward<W>(work)), handler_(std::forward<H>(handler)) {}

  ~offload_op() override {
    if constexpr (tracked) {
      // An abandoned operation keeps its registry alive until here (see
      // completion_registry::shutdown); orphaned_ was set before the reference we die of.
      if (this->orphaned_)
        tracking_.registry->release_orphan();
    }
  }

  // Consumes the creating reference: track, hook cancellation, then run or queue.
  void start() {
    auto slot = asio::get_associated_cancellation_slot(*handler_);
    const bool cancellable = slot.is_connected();
    // The creating reference, the registry's while it tracks us, the cancellation handler's.
    const unsigned refs = 1u + unsigned(tracked) + unsigned(cancellable);
    this->set_refs_before_sharing(refs);
    if constexpr (guarded) {
      auto executor = handler_executor();
      if constexpr (tracked) {
        // Completions into an io_context are counted as its work by the registry; any other
        // executor gets a work guard of its own.
        tracking_.batch_context = batchable_context(executor);
        if (!tracking_.batch_context)
          emplace_work_guard(executor);
        if (!completion_service::track(context_of(executor), this, tracking_.batch_context,
                                       tracking_.registry)) {
          // the context is being destroyed right now (no cancellation handler installed yet)
          drop_handler();
          release(refs);
          return;
        }
      } else {
        emplace_work_guard(executor);
      }
    }
    if (cancellable)
      slot.template emplace<cancel_handler>(this, pool_->lifeline());

    if (nested_call()) {
      // A nested call from one of our own workers (or from inside its own lane's call):
      // queueing it could wait on ourselves.
      pool_->note_nested_start(this);
      state_.store(op_state::running, std::memory_order_relaxed);
      if (!execute_here(/*on_worker_after_task=*/false))
        release();
      return;
    }
    detail::admission admission;
    if constexpr (on_lane) // a pool worker never blocks for a lane: its op parks instead
      admission = work_.lane()->submit(this, may_block_here() && !pool_->is_current());
    else
      admission = pool_->submit(this, may_block_here());
    switch (admission) {
    case detail::admission::accepted:
      // The queue holds our reference now, and a worker may be running the operation
      // already: not one more touch of it here, or its memory would bounce between cores.
      return;
    case detail::admission::queue_full:
      state_.store(op_state::cancelled, std::memory_order_relaxed);
      abort(smartasync::error::queue_full);
      break;
    case detail::admission::stopped:
      state_.store(op_state::cancelled, std::memory_order_relaxed);
      abort(smartasync::error::pool_stopped);
      break;
    }
    release();
  }

  // Consumes the queue's reference.
  void execute() noexcept override {
    if (!execute_here(/*on_worker_after_task=*/true))
      release();
  }

  void abort(error_code ec) noexcept override {
    deliver(std::make_exception_ptr(system_error(ec)), value_storage{}, /*direct=*/false);
  }

  // Refused before it ran, by a shutdown or a closing lane on some other thread. Whether its
  // deadline had passed is decided there, but the caller may hear of it later, after a
  // with_timeout timer on its own loop has fired: then it says deadline_expired (it never ran
  // and its deadline came first, as the caller saw it), not operation_aborted, which
  // with_timeout would take for a running call it had cancelled.
  void abort_refused(error_code ec) noexcept override {
    refused_unrun_ = ec == asio::error::operation_aborted;
    abort(ec);
  }
  deadline_clock::time_point expires_unrun_at() const noexcept {
    return refused_unrun_ ? deadline_ : no_deadline;
  }

  void abort_queued(error_code ec) noexcept override {
    abort_refused(ec);
    if constexpr (on_lane)
      work_.lane()->pass_turn(); // it held the lane's turn while queued in the pool
  }

  void request_stop() noexcept override { stop_.request_stop(); }

  void identify(call_identity& who) const noexcept override { who = identity_of(work_); }

  void abandon() noexcept override {
    // The caller's cancellation slot may outlive the context (a signal that is a member of a
    // longer-lived object): our cancellation handler would stay in it, and with it this
    // operation, its callable and whatever that owns. The context is dying, so none of its
    // handlers runs now: the slot is cleared here, as the completion would have cleared it.
    clear_cancellation_slot(*handler_);
    drop_handler();
  }

  void complete() override {
    if constexpr (tracked) {
      completion done{armed_handler(std::move(*handler_)), std::move(tracking_.error),
                      std::move(tracking_.value), std::move(context_)};
      handler_.reset(); // no work guard: the registry counted our work (see start())
      done();
    }
  }

  void repost() noexcept override {
    if constexpr (tracked) {
      struct reposted {
        offload_op* op;
        reposted(offload_op* o) noexcept : op(o) {}
        reposted(reposted&& other) noexcept : op(std::exchange(other.op, nullptr)) {}
        ~reposted() {
          if (op) { // destroyed unrun: its context died with it queued
            op->abandon();
            op->release();
          }
        }
        void operator()() { std::exchange(op, nullptr)->complete_and_release(); }
      };
      // On the context's thread (the drain holds its work); takes over the caller's reference.
      asio::post(handler_executor(), reposted{this});
    }
  }

private:
  void drop_handler() noexcept {
    handler_.reset();
    if constexpr (own_work_guard)
      work_guard_.reset();
  }

  static void clear_cancellation_slot(Handler& handler) noexcept {
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected())
      slot.clear();
  }

  // The handler inside a completion on its way to the caller's executor. Destroyed there unrun
  // (the context died with it queued), it clears its cancellation slot, as invoking it would
  // have: the slot may outlive the context, and our cancellation handler in it holds this
  // operation. A moved-from one is not armed, so only the last holder does it, on the
  // context's side.
  struct armed_handler {
    Handler handler;
    bool armed = true;
    explicit armed_handler(Handler&& h) noexcept(std::is_nothrow_move_constructible_v<Handler>)
        : handler(std::move(h)) {}
    armed_handler(armed_handler&& other) noexcept(std::is_nothrow_move_constructible_v<Handler>)
        : handler(std::move(other.handler)), armed(std::exchange(other.armed, false)) {}
    armed_handler& operator=(armed_handler&&) = delete;
    ~armed_handler() {
      if (armed)
        clear_cancellation_slot(handler);
    }
  };

  using value_storage =
      std::conditional_t<std::is_void_v<result_type>, std::optional<std::monostate>,
                         result_slot<result_type>>;

  // Stays in the slot until the completion runs on the caller's executor, which may be after
  // the pool is gone: it reaches the pool only through the lifeline (see pool_lifeline).
  struct cancel_handler {
    offload_op* op;
    std::shared_ptr<pool_lifeline> lifeline;
    cancel_handler(offload_op* o, std::shared_ptr<pool_lifeline> l) noexcept
        : op(o), lifeline(std::move(l)) {}
    cancel_handler(const cancel_handler&) = delete;
    cancel_handler& operator=(const cancel_handler&) = delete;
    ~cancel_handler() { op->release(); }
    void operator()(asio::cancellation_type type) {
      std::lock_guard alive(lifeline->mutex);
      if (lifeline->pool) // else destroyed, after it completed every operation
        op->on_cancel(type);
    }
  };

  // Whatever we post carries the handler and the outcome, so the operation can be destroyed
  // independently of when (or whether) the handler's context runs it.
  struct completion {
    armed_handler armed;
    std::exception_ptr error;
    value_storage value;
    captured_context_ptr context; // the submitter's, installed around the handler
    // A call refused unrun before its deadline (abort_refused): heard of after the deadline,
    // it reports deadline_expired.
    deadline_clock::time_point expires_unrun_at = no_deadline;

    void operator()() {
      if (expires_unrun_at != no_deadline && deadline_clock::now() >= expires_unrun_at)
        error = std::make_exception_ptr(
            system_error(make_error_code(smartasync::error::deadline_expired)));
      context_scope carried(context.get());
      Handler& handler = armed.handler;
      armed.armed = false;
      clear_cancellation_slot(handler); // on the handler's own executor, where the slot may be touched
      if constexpr (std::is_void_v<result_type>) {
        std::move(handler)(std::move(error));
      } else {
        static_assert(std::is_default_constructible_v<result_type>,
                      "smartasync: the async form completes with void(std::exception_ptr, R) and "
                      "must pass some R when the call fails or is cancelled, so R must be "
                      "default-constructible. Return std::optional<R> instead.");
        if constexpr (std::is_nothrow_move_constructible_v<result_type>) {
          std::move(handler)(std::move(error), value ? std::move(*value) : result_type{});
        } else {
          // A move that throws becomes the operation's exception, not an escape from the
          // handler call. (The handler's own parameter is one more move, Asio's to make.)
          std::optional<result_type> result;
          if (value && !error) {
            try {
              result.emplace(std::move(*value));
            } catch (...) {
              error = std::current_exception();
            }
          }
          std::move(handler)(std::move(error), result ? std::move(*result) : result_type{});
        }
      }
    }
  };

  // Executors that count outstanding work (io_context, thread_pool, strands of them...) keep
  // it up while the call is in the pool, so that their context does not run out of work: an
  // io_context's is counted by its registry (start()), any other gets a work guard.
  template <typename Executor>
  static constexpr bool counts_work =
      asio::execution::is_executor<Executor>::value
          ? executor_has_context_v<Executor> ||
                asio::can_require<Executor, asio::execution::outstanding_work_t::tracked_t>::value
          : asio::is_executor<Executor>::value;

  // Only what the handler's executor needs is stored: an operation completing to use_future's
  // promise executor is then small enough for malloc's fast path, which matters because it is
  // allocated on the caller's thread and freed on a worker (the use_future tables in
  // docs/benchmarks.md).
  static constexpr bool guarded = has_executor && counts_work<executor_type>;
  static constexpr bool tracked = completes_into_context_v<Handler>;
  // Whether the operation may need a work guard of its own: not when its executor is always an
  // io_context's, whose work the registry counts.
  static constexpr bool own_work_guard = guarded && !is_io_context_executor<executor_type>::value;
  static_assert(!tracked || guarded, "an executor with a context counts work");

  template <typename Executor>
  void emplace_work_guard(const Executor& executor) {
    if constexpr (own_work_guard)
      work_guard_.emplace(executor);
  }

  // Precondition: handler_ is engaged.
  executor_type handler_executor() const {
    return asio::associated_executor<Handler, no_associated_executor>::get(
        *handler_, no_associated_executor{});
  }

  template <typename Executor>
  static asio::execution_context& context_of(const Executor& executor) {
    if constexpr (asio::execution::is_executor<Executor>::value)
      return asio::query(executor, asio::execution::context);
    else
      return executor.context();
  }

  void complete_and_release() {
    release_at_exit ref{this};
    complete();
  }

  // Runs the work and hands the outcome on. True when a batched completion took over the
  // caller's reference; false when the caller still holds it.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
// HACK(gcc 12 to 16): at -O1 and above it reports the disengaged `value` (a std::optional of
// the result) as "may be used uninitialized" where deliver() moves it into the completion, or
// in the payload's destructor, which the optional only runs when engaged. A false positive
// that would break users' -Werror builds.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
  bool execute_here(bool on_worker_after_task) noexcept {
    std::exception_ptr error;
    value_storage value;
    // enqueued_at_ holds when it started (start_running, note_nested_start): a call whose
    // deadline passed while it was queued never starts.
    const bool expired = deadline_ != no_deadline && this->enqueued_at_ > deadline_;
    // A canceller that abandons the call may complete it before it begins; then it never
    // runs, and its outcome says so (on_cancel). Once begun, it runs on without a caller.
    op_state running_state = op_state::running;
    bool abandoned_before_start = false;
    if (!expired && abandons_running_call(work_)) {
      abandoned_before_start = !state_.compare_exchange_strong(
          running_state, op_state::started, std::memory_order_acq_rel);
      running_state = op_state::started;
    }
    if (expired || abandoned_before_start) {
      if (expired)
        error = std::make_exception_ptr(
            system_error(make_error_code(smartasync::error::deadline_expired)));
      pool_->note_returned_unrun(); // counted below, unless already completed
      last_return_ = this->enqueued_at_;
    } else {
      try {
        context_scope carried(context_.get()); // the submitter's context (carry_context)
        if (deadline_ != no_deadline) {
          call_deadline_scope visible(deadline_); // this_call::deadline()
          invoke_with_stop(value);
        } else {
          invoke_with_stop(value);
        }
      } catch (...) {
        error = std::current_exception();
      }
      pool_->note_returned(this);
    }
    if constexpr (on_lane) {
      if (on_worker_after_task) // it held the lane's turn; a nested call runs inside another's
        work_.lane()->pass_turn();
    }
    op_state expected = running_state;
    if (state_.compare_exchange_strong(expected, op_state::done, std::memory_order_acq_rel)) {
      if (expired)
        pool_->note_expired(/*taken=*/false);
      else
        pool_->note_finished(error != nullptr);
    } else if (expected == op_state::stopping) {
      // Cancelled while running, and the caller waited for the call to return: now it may
      // release what the call referenced. Whatever the call produced is discarded.
      state_.store(op_state::done, std::memory_order_release);
      pool_->stopped_call_returned(this);
      if (expired)
        pool_->note_expired(/*taken=*/false);
      else
        timed_out_ ? pool_->note_timed_out() : pool_->note_cancelled();
      value.reset();
      if (!expired)
        error = std::make_exception_ptr(system_error(asio::error::operation_aborted));
    } else {
      return false; // abandoned while running: the canceller already completed the handler
    }
    if constexpr (tracked) {
      if (tracking_.batch_context && tracking_.registry->batching()) {
        // The handler stays in the operation, untouched by this worker; the drain on the
        // handler's own context invokes it.
        tracking_.error = std::move(error);
        tracking_.value = std::move(value);
        return tracking_.registry->push_finished(this, *tracking_.batch_context);
      }
    }
    deliver(std::move(error), std::move(value), on_worker_after_task);
    return false;
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

  void invoke_with_stop(value_storage& value) {
    if constexpr (stop_aware) {
      // Both a per-operation cancel and a pool shutdown(cancel) must reach the callable.
      std::stop_callback on_pool_stop(pool_->stop_token(), [this] { stop_.request_stop(); });
      invoke_into(value, stop_.source.get_token());
    } else {
      invoke_into(value);
    }
  }

  bool nested_call() const noexcept {
    if constexpr (on_lane)
      return work_.lane()->is_current(); // inside this lane's own call: it holds the turn
    else
      return pool_->is_current();
  }

  // Its own deadline (with_deadline, or with_timeout on a deferred call).
  bool deadline_passed() const noexcept override {
    return deadline_ != no_deadline && std::chrono::steady_clock::now() >= deadline_;
  }
  // A cancellation arriving now is the deadline's: also when with_timeout cancels at its
  // deadline a call it could not give the deadline to (an awaitable made before it), one
  // meaning whatever the spelling. (Only here: the flag belongs to this thread's cancellation,
  // not to whatever else that cancellation releases, such as the last owner of a lane.)
  bool cancelled_at_deadline() const noexcept {
    return cancelling_at_deadline_ || deadline_passed();
  }

  template <typename... StopToken>
  void invoke_into(value_storage& value, StopToken... token) {
    if constexpr (std::is_void_v<result_type>) {
      work_(token...);
      value.emplace();
    } else {
      value.emplace_from([&]() -> decltype(auto) { return work_(token...); });
    }
  }

  void on_cancel(asio::cancellation_type type) {
    if constexpr (on_lane) {
      // Still waiting for the lane's turn? (The state first: once the call has left the lane,
      // the lane may be gone by the time a late cancellation arrives.)
      if (state_.load(std::memory_order_acquire) == op_state::in_lane &&
          work_.lane()->try_remove(this)) {
        abort(cancelled_at_deadline() ? error_code(smartasync::error::deadline_expired)
                                : error_code(asio::error::operation_aborted));
        return;
      }
    }
    // Queued at its deadline (with_timeout): it never started, which is not a time-out of the
    // call itself.
    const bool expired = cancelled_at_deadline();
    if (pool_->try_remove(this, expired)) {
      if constexpr (on_lane)
        work_.lane()->pass_turn();
      abort(expired ? error_code(smartasync::error::deadline_expired)
                    : error_code(asio::error::operation_aborted));
      return;
    }
    // Running: the callable's effects cannot be undone, so only terminal cancellation (the
    // caller gives up on the outcome) can be honoured; partial and total are ignored.
    if ((type & asio::cancellation_type::terminal) == asio::cancellation_type::none)
      return;
    const bool timed_out = cancelled_at_deadline();
    if (abandons_running_call(work_)) {
      // Opted in: complete now; the call runs on with nobody waiting for it. A worker that
      // took it but has not begun it yet will not begin it (execute_here): then it is a call
      // that never started, like one removed from the queue.
      // Claimed and counted under the pool lock: a worker that lost the call to us takes that
      // lock before it can leave the pool, so a shutdown never returns to a caller who then
      // reads counts without this outcome.
      bool never_started = false, abandoned = false;
      {
        std::lock_guard lock(pool_->queue.mutex());
        op_state expected = op_state::running;
        if (state_.compare_exchange_strong(expected, op_state::cancelled,
                                           std::memory_order_acq_rel)) {
          timed_out ? pool_->note_expired(/*taken=*/false) : pool_->note_cancelled();
          never_started = true;
        } else if (expected == op_state::started &&
                   state_.compare_exchange_strong(expected, op_state::cancelled,
                                                  std::memory_order_acq_rel)) {
          timed_out ? pool_->note_timed_out() : pool_->note_cancelled();
          abandoned = true;
        }
      }
      if (never_started) {
        abort(timed_out ? error_code(smartasync::error::deadline_expired)
                        : error_code(asio::error::operation_aborted));
      } else if (abandoned) {
        stop_.request_stop();
        // The call still runs with the captured context installed: the handler goes
        // without it rather than free it under the call.
        deliver(std::make_exception_ptr(system_error(asio::error::operation_aborted)),
                value_storage{}, /*direct=*/false, /*with_context=*/false);
      }
      return;
    }
    if (state_.load(std::memory_order_acquire) != op_state::running)
      return; // finished, or already asked to stop
    // The default: ask the call to stop, and complete once it has returned (execute_here), so
    // that what it references (a coroutine's locals, captured by reference) outlives it.
    // Watched before the worker can see `stopping`, so that it always finds the entry to remove.
    pool_->watch_ignored_stop(this, identity_of(work_));
    timed_out_ = timed_out; // published to the worker by the exchange below
    op_state expected = op_state::running;
    if (state_.compare_exchange_strong(expected, op_state::stopping, std::memory_order_acq_rel))
      stop_.request_stop();
    else
      pool_->stopped_call_returned(this);
  }

  // Hands the outcome to the handler, exactly once (the caller won the state transition).
  // `direct`: we are a pool worker after the work, so an executor-less handler may run here.
  // `with_context`: the handler runs with the captured context installed (carry_context).
  void deliver(std::exception_ptr error, value_storage value, bool direct,
               bool with_context = true) noexcept {
    captured_context_ptr context = with_context ? std::move(context_) : captured_context_ptr{};
    if constexpr (has_executor) {
      // handler_ may be touched only inside deliver(): a dying context abandons it under the
      // registry's lock.
      auto post = [&] {
        executor_type executor = [&] {
          if constexpr (own_work_guard) {
            if (work_guard_)
              return work_guard_->get_executor();
          }
          return handler_executor();
        }();
        auto allocator = asio::get_associated_allocator(*handler_);
        auto done = asio::bind_allocator(
            allocator, completion{armed_handler(std::move(*handler_)), std::move(error),
                                  std::move(value), std::move(context), expires_unrun_at()});
        handler_.reset();
        if (direct) {
          // An asynchronous completion, as Asio's own operations deliver theirs: dispatch. For
          // an io_context or a strand this is a post (a worker never runs their handlers);
          // an executor that may run anywhere (use_future's promise executor, the system
          // executor) completes right here instead of paying one more thread hop.
          try {
            asio::dispatch(executor, std::move(done));
          } catch (...) {
            report_handler_exception(identity_of(work_));
          }
        } else {
          // From inside the initiating call or a cancellation signal: never run it inline.
          asio::post(executor, std::move(done));
        }
        if constexpr (own_work_guard)
          work_guard_.reset(); // after the hand-over: the completion now keeps the loop alive
      };
      if constexpr (tracked)
        tracking_.registry->deliver(this, post);
      else
        post();
    } else {
      completion done{armed_handler(std::move(*handler_)), std::move(error), std::move(value),
                      std::move(context), expires_unrun_at()};
      handler_.reset();
      if (direct) {
        try {
          done();
        } catch (...) {
          report_handler_exception(identity_of(work_));
        }
      } else {
        // Never invoke a handler from inside the initiating call or a cancellation signal;
        // with no executor of its own, the system executor runs it.
        asio::post(asio::system_executor(), std::move(done));
      }
    }
  }

  static void report_handler_exception(const call_identity& who) noexcept {
    try {
      std::string what = "an exception of a non-std type";
      try {
        throw;
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      report(diagnostic{.kind = diagnostic_kind::handler_exception,
                        .message = fmt::format("the completion handler of {} has no associated "
                                               "executor and threw on pool worker {}: {}. The "
                                               "exception is dropped; catch it in the handler, "
                                               "or bind the handler to an executor.",
                                               who.describe(), thread_text(std::this_thread::get_id()), what),
                        .name = who.site ? who.site->name : std::string(),
                        .where = who.site ? who.site->created_at : smartasync::source_location{},
                        .duration = {},
                        .thread = std::this_thread::get_id(),
                        .created_at = who.site ? who.site->created_at
                                               : smartasync::source_location{}});
    } catch (...) {
    }
  }

  pool_core* pool_;
  // Set by with_deadline / with_timeout around the initiation (deadline.hpp).
  std::chrono::steady_clock::time_point deadline_ = initiating_deadline_;
  bool timed_out_ = false; // cancelled while running, after its deadline
  bool refused_unrun_ = false; // abort_refused: the handler checks the deadline when it runs
  captured_context_ptr context_ = capture_context(); // on the initiating thread
  Work work_;
  std::optional<Handler> handler_;
  [[no_unique_address]] op_stop_state<stop_aware> stop_;
  [[no_unique_address]] std::conditional_t<
      own_work_guard, std::optional<asio::executor_work_guard<executor_type>>, std::monostate>
      work_guard_;
  struct tracking_state {
    completion_registry* registry = nullptr;       // of the context it completes into
    asio::io_context* batch_context = nullptr;     // set: completions may be batched
    std::exception_ptr error;                      // a batched completion's outcome,
    value_storage value;                           // from the worker to the drain
  };
  [[no_unique_address]] std::conditional_t<tracked, tracking_state, std::monostate> tracking_;
};

} // namespace smartasync::detail

#endif // SMARTASYNC_DETAIL_OFFLOAD_OP_HPP
