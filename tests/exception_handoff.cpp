// An exception handed between threads the way std::promise/std::future and Asio's use_future
// hand every failed operation's exception over: race-free, yet misreported by TSan. The TSan
// preset runs it twice (tests/CMakeLists.txt): without tests/tsan.supp TSan must report the
// race *and name* std::__exception_ptr::exception_ptr::_M_release (else the symbolizer is
// missing, every suppression in tsan.supp matches nothing, and the suite fails with unreadable
// reports, as it did on a fresh machine without llvm-symbolizer); with it, nothing is reported.
//
// Why it is race-free: the two threads share the exception object only through its reference
// count, which libstdc++ drops with an acq_rel atomic (__exchange_and_add_dispatch, inside
// exception_ptr::_M_release). The main thread reads the exception, then drops its reference;
// the other thread drops the last one and frees it. The decrement that frees reads the value
// the main thread's decrement wrote, so the read happens before the free. TSan cannot see that
// edge: _M_release is compiled into libstdc++.so, which is not instrumented. The relaxed flag
// below only orders the two drops the way the reports in the suite had them; it adds no edge.
#include <atomic>
#include <cstdio>
#include <exception>
#include <system_error>
#include <thread>

int main() {
  std::exception_ptr mine = std::make_exception_ptr(
      std::system_error(std::make_error_code(std::errc::operation_canceled)));
  std::atomic<bool> main_dropped{false};
  std::thread other([theirs = mine, &main_dropped]() mutable {
    while (!main_dropped.load(std::memory_order_relaxed))
      std::this_thread::yield();
    theirs = nullptr; // the last reference: frees the exception object
  });
  int value = 0;
  try {
    std::rethrow_exception(mine);
  } catch (const std::system_error& e) {
    value = e.code().value(); // the read a test makes of an operation's error
  }
  mine = nullptr;
  main_dropped.store(true, std::memory_order_relaxed);
  other.join();
  std::printf("error %d read, exception freed on the other thread\n", value);
  return value == static_cast<int>(std::errc::operation_canceled) ? 0 : 1;
}
