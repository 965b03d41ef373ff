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
//   enqueue-head, device-head   the same for all layers but the last (a
//              Softmax's cudaMemcpy waits for the device, which hides
//              whether the host's launches keep ahead of it)
//   h2d        the input copy from pageable host memory (cudaMemcpy)
//   h2d-pinned the same copy from page-locked memory
//   d2h        the first output's copy back into pageable memory
// If `enqueue-head` is close to `device-head`, the host's launches are the
// limit (many small kernels), not the device.
// Then "gemm<TAB>layer<TAB>M<TAB>N<TAB>K<TAB>groups<TAB>ms<TAB>bias ms" per
// Convolution: its GEMMs alone as Caffe issues them for one image
// (caffe_gpu_gemm per group, then the bias as a K=1 GEMM), device time.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "caffe/caffe.hpp"
#include "caffe/util/math_functions.hpp"

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

// Median device milliseconds (CUDA events) of `run`, after 3 warm-up runs.
double device_ms(int repeat, const std::function<void()>& run) {
  cudaEvent_t begin, end;
  check(cudaEventCreate(&begin), "event");
  check(cudaEventCreate(&end), "event");
  std::vector<double> times;
  for (int r = 0; r < repeat + 3; ++r) {
    check(cudaEventRecord(begin), "event");
    run();
    check(cudaEventRecord(end), "event");
    check(cudaEventSynchronize(end), "event");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, begin, end), "event");
    if (r >= 3) times.push_back(ms);
  }
  cudaEventDestroy(begin);
  cudaEventDestroy(end);
  return median(times);
}

void gemm_rows(const caffe::Net<float>& net, int repeat) {
  for (size_t i = 0; i < net.layers().size(); ++i) {
    const auto& layer = net.layers()[i];
    if (std::string(layer->type()) != "Convolution") continue;
    const caffe::Blob<float>& weights = *layer->blobs()[0];
    const int groups = static_cast<int>(layer->layer_param().convolution_param().group());
    const int m = weights.shape(0) / groups, k = weights.count(1);
    const int n = net.top_vecs()[i][0]->count(2);
    float *cols = nullptr, *out = nullptr, *ones = nullptr;
    check(cudaMalloc(&cols, sizeof(float) * k * n * groups), "cudaMalloc");
    check(cudaMalloc(&out, sizeof(float) * m * n * groups), "cudaMalloc");
    check(cudaMalloc(&ones, sizeof(float) * n), "cudaMalloc");
    check(cudaMemset(cols, 0, sizeof(float) * k * n * groups), "cudaMemset");
    caffe::caffe_gpu_set(n, 1.0f, ones);
    const float* w = weights.gpu_data();
    const double main_ms = device_ms(repeat, [&] {
      for (int g = 0; g < groups; ++g) {
        caffe::caffe_gpu_gemm<float>(CblasNoTrans, CblasNoTrans, m, n, k, 1.f, w + g * m * k,
                                     cols + g * k * n, 0.f, out + g * m * n);
      }
    });
    double bias_ms = 0;
    if (layer->blobs().size() > 1) {
      const float* bias = layer->blobs()[1]->gpu_data();
      bias_ms = device_ms(repeat, [&] {
        caffe::caffe_gpu_gemm<float>(CblasNoTrans, CblasNoTrans, m * groups, n, 1, 1.f, bias,
                                     ones, 1.f, out);
      });
    }
    check(cudaFree(cols), "cudaFree");
    check(cudaFree(out), "cudaFree");
    check(cudaFree(ones), "cudaFree");
    std::cout << "gemm\t" << net.layer_names()[i] << "\t" << m << "\t" << n << "\t" << k << "\t"
              << groups << "\t" << main_ms << "\t" << bias_ms << "\n";
  }
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

  const double forward = median_ms(repeat, [&] {
    net.ForwardFromTo(0, layers - 1);
    check(cudaDeviceSynchronize(), "forward");
  });
  cudaEvent_t begin, end;
  check(cudaEventCreate(&begin), "event");
  check(cudaEventCreate(&end), "event");
  // Host launch time and device time (events) of layers [0, last].
  const auto launch_and_device = [&](int last, std::vector<double>& host,
                                     std::vector<double>& device) {
    median_ms(repeat, [&] {
      check(cudaDeviceSynchronize(), "sync");
      const auto start = std::chrono::steady_clock::now();
      check(cudaEventRecord(begin), "event");
      net.ForwardFromTo(0, last);
      check(cudaEventRecord(end), "event");
      host.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
      check(cudaEventSynchronize(end), "event");
      float ms = 0;
      check(cudaEventElapsedTime(&ms, begin, end), "event");
      device.push_back(ms);
    });
  };
  std::vector<double> enqueue, device, head_enqueue, head_device;
  launch_and_device(layers - 1, enqueue, device);
  launch_and_device(layers - 2, head_enqueue, head_device);

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
            << "enqueue-head\t-\t" << median(head_enqueue) << "\n"
            << "device-head\t-\t" << median(head_device) << "\n"
            << "h2d\t" << bytes << "\t" << h2d << "\n"
            << "h2d-pinned\t" << bytes << "\t" << h2d_pinned << "\n"
            << "d2h\t" << result.size() * sizeof(float) << "\t" << d2h << "\n";
  gemm_rows(net, repeat);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "gpu_profile: " << e.what() << "\n";
  return 1;
}
