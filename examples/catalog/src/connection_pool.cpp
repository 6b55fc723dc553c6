// connection_pool.cpp - lends catalog_db connections to one thread at a time.
// Distributed under the Boost Software License, Version 1.0.
#include "catalog/connection_pool.hpp"

#include <stdexcept>
#include <utility>

namespace catalog {

connection_pool::connection_pool(std::filesystem::path file, std::size_t max_connections, open_mode mode,
                                 std::chrono::milliseconds busy_timeout)
    : file_(std::move(file)), max_(max_connections), mode_(mode), busy_timeout_(busy_timeout) {
  if (max_ == 0)
    throw std::invalid_argument("connection_pool needs at least one connection");
  // Open one now: a bad file is a start-up error, not a surprise on the first request.
  all_.push_back(std::make_unique<catalog_db>(file_, mode_, busy_timeout_));
  free_.push_back(all_.back().get());
}

connection_pool::lease connection_pool::acquire() {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (!free_.empty()) {
      catalog_db* db = free_.back();
      free_.pop_back();
      return lease(this, db);
    }
    if (all_.size() < max_) {
      // Reserve the slot, then open outside the lock: opening touches the file.
      all_.push_back(nullptr);
      const std::size_t slot = all_.size() - 1;
      lock.unlock();
      std::unique_ptr<catalog_db> db;
      try {
        db = std::make_unique<catalog_db>(file_, mode_, busy_timeout_);
      } catch (...) {
        lock.lock();
        all_.erase(all_.begin() + static_cast<std::ptrdiff_t>(slot));
        returned_.notify_one();
        throw;
      }
      lock.lock();
      catalog_db* raw = db.get();
      all_[slot] = std::move(db);
      return lease(this, raw);
    }
    returned_.wait(lock);
  }
}

std::size_t connection_pool::opened() const {
  std::lock_guard lock(mutex_);
  return all_.size();
}

void connection_pool::release(catalog_db* db) noexcept {
  {
    std::lock_guard lock(mutex_);
    free_.push_back(db);
  }
  returned_.notify_one();
}

} // namespace catalog
