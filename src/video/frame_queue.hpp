// A bounded queue between a stream's decoding and recognition threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

namespace vigil {

// What push() does when the queue is full.
enum class QueueFull {
  kBlock,       // wait for room (files: every frame is processed)
  kDropOldest,  // discard the oldest item and count it (live sources: the newest frames matter)
};

// A multi-producer, multi-consumer FIFO of at most `capacity` items. Thread-safe.
template <typename T>
class BoundedQueue {
 public:
  BoundedQueue(std::size_t capacity, QueueFull policy)
      : capacity_(capacity ? capacity : 1), policy_(policy) {}

  // Adds an item. False (the item is discarded) once close() was called.
  bool push(T item) {
    std::unique_lock lock(mutex_);
    if (policy_ == QueueFull::kBlock) {
      not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    } else {
      while (!closed_ && items_.size() >= capacity_) {
        items_.pop_front();
        ++dropped_;
      }
    }
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }

  // The oldest item; blocks while the queue is empty and open. nullopt once it is closed and empty.
  std::optional<T> pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }

  // No more pushes; pop() still returns what is queued, then nullopt. Wakes every waiter.
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

  // close() and discard what is queued (not counted as dropped).
  void close_and_clear() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    items_.clear();
    not_empty_.notify_all();
    not_full_.notify_all();
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return items_.size();
  }
  std::int64_t dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
  }
  std::size_t capacity() const { return capacity_; }

 private:
  const std::size_t capacity_;
  const QueueFull policy_;
  mutable std::mutex mutex_;
  std::condition_variable not_empty_, not_full_;
  std::deque<T> items_;
  bool closed_ = false;
  std::int64_t dropped_ = 0;
};

}  // namespace vigil
