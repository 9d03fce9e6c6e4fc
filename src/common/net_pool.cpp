#include "common/net_pool.hpp"

#include "common/json_file.hpp"

namespace vigil {

Result<std::shared_ptr<NetPool>> NetPool::load(const std::string& onnx_path) {
  auto bytes = read_file_bytes(onnx_path);
  if (!bytes) return Error{bytes.error()};
  auto pool = std::make_shared<NetPool>();
  pool->bytes_.assign(bytes->begin(), bytes->end());
  try {
    auto net = pool->make();
    if (net->empty()) return Error{onnx_path + ": OpenCV could not build a network from this ONNX file"};
    pool->free_.push_back(std::move(net));
  } catch (const cv::Exception& e) {
    return Error{onnx_path + ": not a model OpenCV DNN can run (" + e.msg + ")"};
  }
  return pool;
}

std::unique_ptr<cv::dnn::Net> NetPool::make() const {
  auto net = std::make_unique<cv::dnn::Net>(cv::dnn::readNetFromONNX(bytes_.data(), bytes_.size()));
  net->setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net->setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  return net;
}

NetPool::Lease NetPool::acquire() {
  {
    std::lock_guard lock(mutex_);
    if (!free_.empty()) {
      auto net = std::move(free_.back());
      free_.pop_back();
      return Lease(this, std::move(net));
    }
  }
  return Lease(this, make());
}

NetPool::Lease::~Lease() {
  if (!net_) return;
  std::lock_guard lock(pool_->mutex_);
  pool_->free_.push_back(std::move(net_));
}

}  // namespace vigil
