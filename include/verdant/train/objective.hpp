#pragma once
// What the training loop minimises and how it runs the model forward. The default is
// cross-entropy on the model's own forward pass; compression supplies its own objective
// (distillation's loss against a teacher, fake-quantized activations), so every kind of run
// goes through the one Trainer.
#include "verdant/autograd/variable.hpp"
#include "verdant/data/loader.hpp"
#include "verdant/nn/module.hpp"

namespace verdant::train {

class Objective {
 public:
  virtual ~Objective() = default;
  // Logits of a batch. The trainer's steps and its evaluations both call it.
  virtual autograd::Variable forward(nn::Module& model, const autograd::Variable& x) {
    return model.forward(x);
  }
  // The scalar loss of a training batch, on the graph of `logits`. `batch.indices` are the
  // samples' positions in the training set.
  virtual autograd::Variable loss(const autograd::Variable& logits, const data::Batch& batch) = 0;
};

// Mean cross-entropy against the batch's labels, with optional label smoothing.
class CrossEntropyObjective : public Objective {
 public:
  explicit CrossEntropyObjective(float label_smoothing = 0.f) : label_smoothing_(label_smoothing) {}
  autograd::Variable loss(const autograd::Variable& logits, const data::Batch& batch) override;

 private:
  float label_smoothing_;
};

}  // namespace verdant::train
