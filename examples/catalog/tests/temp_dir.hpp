// temp_dir.hpp - a scratch directory per test, removed afterwards.
// Distributed under the Boost Software License, Version 1.0.
#ifndef CATALOG_TESTS_TEMP_DIR_HPP
#define CATALOG_TESTS_TEMP_DIR_HPP

#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>
#include <unistd.h>

namespace catalog::testing {

struct temp_dir {
  std::filesystem::path path;

  temp_dir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("catalog-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }

  std::filesystem::path operator/(const std::string& name) const { return path / name; }
};

} // namespace catalog::testing

#endif // CATALOG_TESTS_TEMP_DIR_HPP
