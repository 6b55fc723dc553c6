// Shared helpers for smartasync's tests.
#ifndef SMARTASYNC_TESTS_COMMON_TEST_SUPPORT_HPP
#define SMARTASYNC_TESTS_COMMON_TEST_SUPPORT_HPP

#include <smartasync/deferred.hpp>
#include <smartasync/diagnostics.hpp>

#include "asio_flavour.hpp"
#include "eventually.hpp"

#include SMARTASYNC_ASIO_HEADER(awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(bind_cancellation_slot.hpp)
#include SMARTASYNC_ASIO_HEADER(cancellation_signal.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(post.hpp)
#include SMARTASYNC_ASIO_HEADER(steady_timer.hpp)

#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace test_support {

// The deferred completion token (the library's spelling, which compiles on every Asio).
inline constexpr const smartasync::deferred_t& deferred = smartasync::deferred;

// A one-shot gate: threads wait() until someone open()s it. Lets tests hold a pool worker
// busy for exactly as long as they need, with no sleeps.
class gate {
public:
  // Notifies under the lock: once a waiter has returned, open() no longer touches the gate, so
  // the waiter may destroy it at once.
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return open_; });
  }
  bool is_open() {
    std::lock_guard lock(mutex_);
    return open_;
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Collects diagnostics for the lifetime of the object, then restores the previous handler.
class diagnostics_capture {
public:
  diagnostics_capture()
      : previous_(smartasync::set_diagnostics_handler([this](const smartasync::diagnostic& d) {
          std::lock_guard lock(mutex_);
          reports_.push_back(d);
        })) {}
  ~diagnostics_capture() { smartasync::set_diagnostics_handler(previous_); }
  diagnostics_capture(const diagnostics_capture&) = delete;
  diagnostics_capture& operator=(const diagnostics_capture&) = delete;

  std::vector<smartasync::diagnostic> reports() {
    std::lock_guard lock(mutex_);
    return reports_;
  }

private:
  std::mutex mutex_;
  std::vector<smartasync::diagnostic> reports_;
  smartasync::diagnostics_handler previous_;
};

/// Runs `a` on `io` (by calling io.run() on this thread) and returns its result or rethrows.
template <typename T>
T run(asio::io_context& io, asio::awaitable<T> a) {
  std::exception_ptr error;
  std::optional<std::conditional_t<std::is_void_v<T>, int, T>> value;
  bool done = false;
  if constexpr (std::is_void_v<T>) {
    asio::co_spawn(io, std::move(a), [&](std::exception_ptr e) {
      error = e;
      done = true;
    });
  } else {
    asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
      error = e;
      if (!e)
        value.emplace(std::move(v));
      done = true;
    });
  }
  io.run();
  io.restart();
  if (!done)
    throw std::logic_error("coroutine did not finish");
  if (error)
    std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>)
    return std::move(*value);
}

/// Same, on a fresh io_context.
template <typename T>
T run(asio::awaitable<T> a) {
  asio::io_context io;
  return run(io, std::move(a));
}

/// The smartasync::error_code carried by `e` (empty when `e` is null or not a smartasync::system_error).
inline smartasync::error_code code_of(std::exception_ptr e) {
  if (!e)
    return {};
  try {
    std::rethrow_exception(e);
  } catch (const smartasync::system_error& error) {
    return error.code();
  } catch (...) {
  }
  return {};
}

/// Runs `f` (which must throw) and returns the smartasync::error_code it threw.
template <typename F>
smartasync::error_code code_thrown_by(F&& f) {
  try {
    std::forward<F>(f)();
  } catch (...) {
    return code_of(std::current_exception());
  }
  return {};
}

/// Runs `body` on `io`, cancels it (terminal, emitted from the loop as Asio requires) once it
/// has started and suspended, and returns the exception it completed with (null: success).
template <typename T>
std::exception_ptr run_then_cancel(asio::io_context& io, asio::awaitable<T> body) {
  asio::cancellation_signal signal;
  std::exception_ptr outcome;
  bool done = false;
  auto record = [&](std::exception_ptr e, auto&&...) {
    outcome = e;
    done = true;
  };
  if constexpr (std::is_void_v<T>)
    asio::co_spawn(io, std::move(body),
                   asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e) { record(e); }));
  else
    asio::co_spawn(io, std::move(body),
                   asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, T) { record(e); }));
  asio::steady_timer later(io, std::chrono::milliseconds(2));
  later.async_wait([&](smartasync::error_code) { signal.emit(asio::cancellation_type::terminal); });
  io.run();
  io.restart();
  if (!done)
    throw std::logic_error("the cancelled coroutine never completed");
  return outcome;
}

/// Blocks until a stop is requested on `token`.
inline void wait_for_stop(std::stop_token token) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  cv.wait(lock, token, [] { return false; });
}

/// Runs `f` as a handler of `ioc` (so on a thread running an event loop) and returns.
template <typename F>
void on_loop(asio::io_context& ioc, F f) {
  asio::post(ioc, std::move(f));
  ioc.run();
  ioc.restart();
}

/// True when `text` contains `part` (for checking report messages).
inline bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace test_support

#endif // SMARTASYNC_TESTS_COMMON_TEST_SUPPORT_HPP
