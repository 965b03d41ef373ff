// Where a forward's time goes, layer by layer: stock caffe::Net (none of our
// code), each layer timed on its own with ForwardFromTo(i, i), the median of
// REPEAT passes after one warm-up pass.
//
//   layer_profile PROTOTXT CAFFEMODEL BATCH HEIGHT WIDTH REPEAT CAFFE_THREADS
//
// CAFFE_THREADS sets libcaffe's own loops (im2col, pooling, LRN, ReLU; our
// recipe's patch 0009): 1 is stock Caffe's serial code, 0 all cores. BLAS
// threads follow OPENBLAS_NUM_THREADS. Prints "name<TAB>type<TAB>ms" per
// layer, then "total<TAB>-<TAB>ms" (the median whole pass, not the sum).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "caffe/caffe.hpp"

// Patch 0009's knob; weak, so a libcaffe without the patch still links (and
// CAFFE_THREADS is then ignored).
extern "C" void caffe_set_parallel_threads(int threads) __attribute__((weak));

namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc != 8 || std::atoi(argv[3]) < 1 || std::atoi(argv[6]) < 1) {
    std::cerr << "usage: layer_profile PROTOTXT CAFFEMODEL BATCH(>=1) HEIGHT WIDTH REPEAT(>=1) "
                 "CAFFE_THREADS\n";
    return 2;
  }
  const int batch = std::atoi(argv[3]), height = std::atoi(argv[4]), width = std::atoi(argv[5]);
  const int repeat = std::atoi(argv[6]);
  if (caffe_set_parallel_threads != nullptr) caffe_set_parallel_threads(std::atoi(argv[7]));
  FLAGS_minloglevel = 2;
  caffe::Net<float> net(argv[1], caffe::TEST);
  net.CopyTrainedLayersFrom(argv[2]);
  caffe::Blob<float>* input = net.input_blobs()[0];
  input->Reshape({batch, input->shape(1), height, width});
  net.Reshape();
  // Values of an image's range; the numbers do not change a layer's work.
  float* data = input->mutable_cpu_data();
  for (int i = 0; i < input->count(); ++i) data[i] = static_cast<float>(i % 255) - 127.0f;

  const int layers = static_cast<int>(net.layers().size());
  std::vector<std::vector<double>> per_layer(layers);
  std::vector<double> totals;
  for (int pass = 0; pass <= repeat; ++pass) {
    const auto whole = std::chrono::steady_clock::now();
    for (int i = 0; i < layers; ++i) {
      const auto start = std::chrono::steady_clock::now();
      net.ForwardFromTo(i, i);
      if (pass > 0) per_layer[i].push_back(ms_since(start));
    }
    if (pass > 0) totals.push_back(ms_since(whole));
  }
  for (int i = 0; i < layers; ++i) {
    std::cout << net.layer_names()[i] << "\t" << net.layers()[i]->type() << "\t"
              << median(per_layer[i]) << "\n";
  }
  std::cout << "total\t-\t" << median(totals) << "\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "layer_profile: " << e.what() << "\n";
  return 1;
}
