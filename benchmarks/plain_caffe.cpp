// Plain Caffe, for benchmarks/dense.py to compare against: stock caffe::Net
// and nothing of ours, doing what a pycaffe user does per image (write the
// input blob, Forward, read the output on the host).
//
//   plain_caffe PROTOTXT CAFFEMODEL HEIGHT WIDTH REPEAT cpu|gpu INPUT OUTPUT
//
// INPUT holds 3 x HEIGHT x WIDTH float32s; OUTPUT receives the net's first
// output after the last run (float32s). Prints the milliseconds of each of
// REPEAT runs after one warm-up run, one per line.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "caffe/caffe.hpp"

namespace {

std::vector<float> read_floats(const std::string& path, size_t count) {
  std::vector<float> data(count);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(data.data()), count * sizeof(float));
  if (in.gcount() != static_cast<std::streamsize>(count * sizeof(float))) {
    throw std::runtime_error(path + " holds fewer than " + std::to_string(count) + " floats");
  }
  return data;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc != 9 || std::atoi(argv[5]) < 1) {
    std::cerr << "usage: plain_caffe PROTOTXT CAFFEMODEL HEIGHT WIDTH REPEAT(>=1) cpu|gpu INPUT OUTPUT\n";
    return 2;
  }
  const int height = std::atoi(argv[3]), width = std::atoi(argv[4]), repeat = std::atoi(argv[5]);
  const std::string mode = argv[6];
  FLAGS_minloglevel = 2;  // Caffe's per-layer setup log would drown the result
  if (mode == "gpu") caffe::Caffe::set_mode(caffe::Caffe::GPU);

  caffe::Net<float> net(argv[1], caffe::TEST);
  net.CopyTrainedLayersFrom(argv[2]);
  caffe::Blob<float>* input = net.input_blobs()[0];
  input->Reshape({1, input->shape(1), height, width});
  net.Reshape();
  const std::vector<float> image = read_floats(argv[7], input->count());
  const caffe::Blob<float>* output = net.output_blobs()[0];

  for (int run = 0; run <= repeat; ++run) {
    const auto start = std::chrono::steady_clock::now();
    std::copy(image.begin(), image.end(), input->mutable_cpu_data());
    net.Forward();
    const float* result = output->cpu_data();  // in GPU mode: the copy back, which waits
    const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
    if (run > 0) std::cout << took.count() << "\n";
    if (run == repeat) {
      std::ofstream(argv[8], std::ios::binary)
          .write(reinterpret_cast<const char*>(result), output->count() * sizeof(float));
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "plain_caffe: " << e.what() << "\n";
  return 1;
}
