"""Classification (accuracy, macro-F1) and regression (MSE, Pearson) metrics in plain Python."""

import math


def classification_metrics(predicted: list, actual: list, num_labels: int) -> dict:
    correct = sum(p == a for p, a in zip(predicted, actual))
    f1_scores = []
    for label in range(num_labels):
        true_positive = sum(p == label and a == label for p, a in zip(predicted, actual))
        predicted_count = sum(p == label for p in predicted)
        actual_count = sum(a == label for a in actual)
        if predicted_count + actual_count == 0:
            continue  # a class absent from both sides says nothing about this evaluation
        f1_scores.append(2 * true_positive / (predicted_count + actual_count))
    return {"accuracy": correct / len(actual) if actual else 0.0,
            "macro_f1": sum(f1_scores) / len(f1_scores) if f1_scores else 0.0}


def regression_metrics(predicted: list, actual: list) -> dict:
    n = len(actual)
    mse = sum((p - a) ** 2 for p, a in zip(predicted, actual)) / n if n else 0.0
    mean_p, mean_a = (sum(predicted) / n, sum(actual) / n) if n else (0.0, 0.0)
    covariance = sum((p - mean_p) * (a - mean_a) for p, a in zip(predicted, actual))
    spread = math.sqrt(sum((p - mean_p) ** 2 for p in predicted) * sum((a - mean_a) ** 2 for a in actual))
    # Pearson is undefined for constant predictions or targets; report 0 (no linear relation).
    return {"mse": mse, "pearson": covariance / spread if spread > 0 else 0.0}
