// bench/baselines.hpp - what a user would write instead of smartasync, written as well as we can.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_BENCH_BASELINES_HPP
#define SMARTASYNC_BENCH_BASELINES_HPP

#include <asio/associated_allocator.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/bind_allocator.hpp>
#include <asio/dispatch.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>

#include <atomic>
#include <exception>
#include <memory>
#include <thread>
#include <utility>

namespace bench {

// Calls `f`, catching what it throws: the (error, value) a completion handler receives.
template <typename F>
auto call_capturing(F& f) {
  std::pair<std::exception_ptr, decltype(f())> outcome{};
  try {
    outcome.second = f();
  } catch (...) {
    outcome.first = std::current_exception();
  }
  return outcome;
}

// The lean hand-written offload: post the call to an asio::thread_pool, then dispatch the
// completion to the handler's associated executor (kept alive by a work guard) with the
// handler's associated allocator. Same completion signature as smartasync, so exceptions
// travel too. No cancellation, no queue bound, no context-destruction safety: that is the
// point of comparison, the cost of the bare mechanism.
template <typename F, typename Token>
auto lean_offload(asio::thread_pool& pool, F f, Token&& token) {
  using result = decltype(f());
  return asio::async_initiate<Token, void(std::exception_ptr, result)>(
      [&pool](auto handler, F f) {
        auto work = asio::make_work_guard(asio::get_associated_executor(handler));
        asio::post(pool, [handler = std::move(handler), work = std::move(work),
                          f = std::move(f)]() mutable {
          auto outcome = call_capturing(f);
          auto alloc = asio::get_associated_allocator(handler);
          asio::dispatch(work.get_executor(),
                         asio::bind_allocator(alloc, [handler = std::move(handler),
                                                      outcome = std::move(outcome)]() mutable {
                           std::move(handler)(outcome.first, std::move(outcome.second));
                         }));
          work.reset();
        });
      },
      token, std::move(f));
}

// Not a design anyone should ship: the floor of a round trip to another thread when the event
// loop sleeps while it waits. One thread spins on a one-job mailbox all the time (a core
// burnt, never parked), so the hop there costs no wake-up; the hop back is an ordinary post to
// the handler's executor, which wakes the sleeping loop. Whatever a pool does, a round trip
// from an idle loop cannot be faster than this. One job at a time (one in flight).
class spinning_thread {
public:
  spinning_thread() : thread_([this] { run(); }) {}
  spinning_thread(const spinning_thread&) = delete;
  spinning_thread& operator=(const spinning_thread&) = delete;
  ~spinning_thread() {
    stop_.store(true, std::memory_order_relaxed);
    thread_.join();
  }

  template <typename F, typename Token>
  auto offload(F f, Token&& token) {
    using result = decltype(f());
    return asio::async_initiate<Token, void(std::exception_ptr, result)>(
        [this](auto handler, F f) {
          using handler_type = decltype(handler);
          struct job final : job_base {
            job(handler_type h, F fn)
                : handler(std::move(h)), f(std::move(fn)),
                  work(asio::make_work_guard(asio::get_associated_executor(handler))) {}
            void run() override {
              auto ex = work.get_executor();
              asio::post(ex, [h = std::move(handler), outcome = call_capturing(f)]() mutable {
                std::move(h)(outcome.first, std::move(outcome.second));
              });
            }
            handler_type handler;
            F f;
            asio::executor_work_guard<asio::associated_executor_t<handler_type>> work;
          };
          job_base* expected = nullptr;
          job_base* next = new job(std::move(handler), std::move(f));
          while (!mailbox_.compare_exchange_weak(expected, next, std::memory_order_release,
                                                 std::memory_order_relaxed))
            expected = nullptr;
        },
        token, std::move(f));
  }

private:
  struct job_base {
    virtual ~job_base() = default;
    virtual void run() = 0;
  };

  void run() {
    while (!stop_.load(std::memory_order_relaxed)) {
      if (job_base* j = mailbox_.exchange(nullptr, std::memory_order_acquire)) {
        std::unique_ptr<job_base> owned{j};
        owned->run();
      }
    }
  }

  std::atomic<job_base*> mailbox_{nullptr};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

} // namespace bench

#endif // SMARTASYNC_BENCH_BASELINES_HPP
