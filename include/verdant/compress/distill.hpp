#pragma once
// Hinton et al. (2015) knowledge distillation loss on logits:
//   L = alpha * CE(y, student) + (1 - alpha) * T^2 * KL(softmax(teacher/T) || softmax(student/T))
// averaged over the batch, with its exact gradient with respect to the student's logits.
#include <cstdint>
#include <span>

#include "verdant/core/tensor.hpp"

namespace verdant::compress {

struct KdResult {
  double loss = 0;
  double ce = 0;  // hard-label part (before alpha)
  double kl = 0;  // soft part, KL only (before T^2 and 1 - alpha)
  Tensor grad;    // dL/d student_logits, shape [N, C]
};

// student, teacher: [N, C] f32; labels: N class indices. Throws verdant::Error if the
// shapes differ or a label is out of range.
KdResult kd_loss(const Tensor& student, const Tensor& teacher, std::span<const std::int32_t> labels,
                 double alpha, double temperature);

}  // namespace verdant::compress
