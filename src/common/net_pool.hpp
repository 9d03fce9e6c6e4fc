// A pool of OpenCV DNN networks loaded from one ONNX buffer: cv::dnn::Net::forward is not thread-safe,
// so each concurrent caller borrows its own instance.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <opencv2/dnn.hpp>

#include "vigil/common.hpp"

namespace vigil {

class NetPool {
 public:
  // Loads and checks the first instance; fails with a message naming the file.
  static Result<std::shared_ptr<NetPool>> load(const std::string& onnx_path);

  // A borrowed network, returned to the pool when destroyed.
  class Lease {
   public:
    Lease(NetPool* pool, std::unique_ptr<cv::dnn::Net> net) : pool_(pool), net_(std::move(net)) {}
    Lease(Lease&&) = default;
    ~Lease();
    cv::dnn::Net& operator*() { return *net_; }
    cv::dnn::Net* operator->() { return net_.get(); }

   private:
    NetPool* pool_;
    std::unique_ptr<cv::dnn::Net> net_;
  };
  Lease acquire();

 private:
  std::unique_ptr<cv::dnn::Net> make() const;
  std::vector<char> bytes_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<cv::dnn::Net>> free_;
};

}  // namespace vigil
