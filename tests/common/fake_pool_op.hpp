// A pool operation that runs nothing and records what the pool did with it, for the tests of
// the pool's parts (tests/detail/).
#ifndef SMARTASYNC_TESTS_COMMON_FAKE_POOL_OP_HPP
#define SMARTASYNC_TESTS_COMMON_FAKE_POOL_OP_HPP

#include <smartasync/detail/pool_op.hpp>

#include <atomic>
#include <functional>
#include <system_error>

namespace test_support {

class fake_pool_op final : public smartasync::detail::pool_op {
public:
  // Counts of what happened to it, readable after it is gone when given.
  struct record {
    std::atomic<int> executed{0}, aborted{0}, destroyed{0};
    smartasync::error_code last_error{};
  };

  explicit fake_pool_op(record* r = nullptr, std::function<void()> run = {})
      : record_(r), run_(std::move(run)) {}

  void execute() noexcept override {
    if (run_)
      run_();
    if (record_)
      record_->executed.fetch_add(1);
    release();
  }
  void abort(smartasync::error_code ec) noexcept override {
    if (record_) {
      record_->last_error = ec;
      record_->aborted.fetch_add(1);
    }
  }
  void abandon() noexcept override {}

private:
  ~fake_pool_op() override {
    if (record_)
      record_->destroyed.fetch_add(1);
  }
  record* record_;
  std::function<void()> run_;
};

} // namespace test_support

#endif // SMARTASYNC_TESTS_COMMON_FAKE_POOL_OP_HPP
