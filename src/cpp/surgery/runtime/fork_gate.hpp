// fork() while another thread is inside Caffe hands the child the locks
// that thread held at that instant (OpenBLAS's level-3 GEMM lock, its buffer
// allocator's, glog's), and in the child nobody will ever release them: the
// child's first GEMM waits forever. So a stretch of Caffe work is a
// CaffeSection, and fork() (through pthread_atfork) waits until no other
// thread is inside one; sections that would start meanwhile wait for the
// fork. A long section (a forward) lets a pending fork through between two
// steps, so fork() waits at most one layer, not a whole forward.
#ifndef SURGERY_FORK_GATE_HPP_
#define SURGERY_FORK_GATE_HPP_

namespace surgery {

class CaffeSection {
 public:
  CaffeSection();
  ~CaffeSection();
  CaffeSection(const CaffeSection&) = delete;
  CaffeSection& operator=(const CaffeSection&) = delete;
};

// Steps the calling thread out of its section for a while (no effect
// outside one): for code run from inside Caffe that takes no lock of
// OpenBLAS or glog but may wait on a thread that is forking (a Python
// layer waits for the GIL, which fork() holds while it waits for sections).
class OutsideCaffeSection {
 public:
  OutsideCaffeSection();
  ~OutsideCaffeSection();
  OutsideCaffeSection(const OutsideCaffeSection&) = delete;
  OutsideCaffeSection& operator=(const OutsideCaffeSection&) = delete;

 private:
  int depth_;
};

// Between two steps of the calling thread's section: if a fork is waiting,
// step out, let it happen, step back in. No effect outside a section.
void let_fork_through();

}  // namespace surgery

#endif  // SURGERY_FORK_GATE_HPP_
