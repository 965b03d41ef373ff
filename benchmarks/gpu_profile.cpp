// Where a GPU forward's time goes: stock caffe::Net in GPU mode (none of our
// code). Built only against a CUDA libcaffe.
//
//   gpu_profile PROTOTXT CAFFEMODEL HEIGHT WIDTH REPEAT [tf32]
//
// tf32: cuBLAS's GEMMs on tensor cores (as surgery.set_tf32(True)).
// Prints "name<TAB>type<TAB>ms" per layer (ForwardFromTo(i, i) and a device
// sync: launch and kernel time, one layer alone), then, each the median of
// REPEAT runs after warm-up:
//   enqueue    host time to launch a whole forward, not waiting for it
//   forward    a whole forward and the wait for the device
//   device     the same forward between CUDA events: the device's own time
//   h2d        the input copy from pageable host memory (cudaMemcpy)
//   h2d-pinned the same copy from page-locked memory
//   d2h        the first output's copy back into pageable memory
// If `enqueue` is close to `forward`, the host's launches are the limit
// (many small kernels), not the device.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "caffe/caffe.hpp"

namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " +
                                                      cudaGetErrorString(status));
}

// Median host milliseconds of `run`, after a quarter second of warm-up runs
// (an idle GPU's clocks take that long to come up).
double median_ms(int repeat, const std::function<void()>& run) {
  using clock = std::chrono::steady_clock;
  const auto warm = clock::now();
  while (std::chrono::duration<double>(clock::now() - warm).count() < 0.25) run();
  std::vector<double> times;
  for (int i = 0; i < repeat; ++i) {
    const auto start = clock::now();
    run();
    times.push_back(std::chrono::duration<double, std::milli>(clock::now() - start).count());
  }
  return median(times);
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 6 || argc > 7 || std::atoi(argv[5]) < 1 ||
      (argc == 7 && std::string(argv[6]) != "tf32")) {
    std::cerr << "usage: gpu_profile PROTOTXT CAFFEMODEL HEIGHT WIDTH REPEAT(>=1) [tf32]\n";
    return 2;
  }
  const int height = std::atoi(argv[3]), width = std::atoi(argv[4]), repeat = std::atoi(argv[5]);
  FLAGS_minloglevel = 2;
  caffe::Caffe::set_mode(caffe::Caffe::GPU);
  if (argc == 7 && cublasSetMathMode(caffe::Caffe::cublas_handle(), CUBLAS_TF32_TENSOR_OP_MATH) !=
                       CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error("cuBLAS refused TF32");
  }
  caffe::Net<float> net(argv[1], caffe::TEST);
  net.CopyTrainedLayersFrom(argv[2]);
  caffe::Blob<float>* input = net.input_blobs()[0];
  input->Reshape({1, input->shape(1), height, width});
  net.Reshape();
  std::vector<float> image(input->count());
  for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<float>(i % 255) - 127.0f;
  check(cudaMemcpy(input->mutable_gpu_data(), image.data(), image.size() * sizeof(float),
                   cudaMemcpyHostToDevice), "input copy");

  const int layers = static_cast<int>(net.layers().size());
  for (int i = 0; i < layers; ++i) {
    const double ms = median_ms(repeat, [&] {
      net.ForwardFromTo(i, i);
      check(cudaDeviceSynchronize(), "layer");
    });
    std::cout << net.layer_names()[i] << "\t" << net.layers()[i]->type() << "\t" << ms << "\n";
  }

  std::vector<double> enqueue;
  const double forward = median_ms(repeat, [&] {
    const auto start = std::chrono::steady_clock::now();
    net.ForwardFromTo(0, layers - 1);
    enqueue.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
    check(cudaDeviceSynchronize(), "forward");
  });
  cudaEvent_t begin, end;
  check(cudaEventCreate(&begin), "event");
  check(cudaEventCreate(&end), "event");
  std::vector<double> device;
  median_ms(repeat, [&] {
    check(cudaEventRecord(begin), "event");
    net.ForwardFromTo(0, layers - 1);
    check(cudaEventRecord(end), "event");
    check(cudaEventSynchronize(end), "event");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, begin, end), "event");
    device.push_back(ms);
  });

  const size_t bytes = image.size() * sizeof(float);
  float* pinned = nullptr;
  check(cudaMallocHost(&pinned, bytes), "cudaMallocHost");
  std::copy(image.begin(), image.end(), pinned);
  float* target = input->mutable_gpu_data();
  const double h2d = median_ms(repeat, [&] {
    check(cudaMemcpy(target, image.data(), bytes, cudaMemcpyHostToDevice), "h2d");
  });
  const double h2d_pinned = median_ms(repeat, [&] {
    check(cudaMemcpy(target, pinned, bytes, cudaMemcpyHostToDevice), "h2d");
  });
  check(cudaFreeHost(pinned), "cudaFreeHost");
  const caffe::Blob<float>* output = net.output_blobs()[0];
  std::vector<float> result(output->count());
  const double d2h = median_ms(repeat, [&] {
    check(cudaMemcpy(result.data(), output->gpu_data(), result.size() * sizeof(float),
                     cudaMemcpyDeviceToHost), "d2h");
  });

  std::cout << "enqueue\t-\t" << median(enqueue) << "\n"
            << "forward\t-\t" << forward << "\n"
            << "device\t-\t" << median(device) << "\n"
            << "h2d\t" << bytes << "\t" << h2d << "\n"
            << "h2d-pinned\t" << bytes << "\t" << h2d_pinned << "\n"
            << "d2h\t" << result.size() * sizeof(float) << "\t" << d2h << "\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "gpu_profile: " << e.what() << "\n";
  return 1;
}
