"""A one-hidden-layer neural network for handwritten digits, in plain NumPy.

The network, the loss and the training loop are ordinary NumPy code: the
parameters live in a plain ``dict`` of arrays, and ``mo.value_and_grad(loss)``
returns the loss together with a gradient that is a ``dict`` with the same
keys and array shapes, so the SGD update is a one-line dict comprehension.
No layers, tensors or framework objects are involved.

The data are scikit-learn's bundled 8x8 digit images
(``sklearn.datasets.load_digits``: 1797 images, no download). Before training
the gradient is checked against finite differences with
``mo.testing.check_grads``.

Run it with ``python examples/03_digits_classifier.py`` (or ``./run_examples.sh``).
"""

import os
import time
from pathlib import Path

import numpy as np

import morula as mo


def init_params(rng, n_in, n_hidden, n_out):
    return {
        "W1": rng.standard_normal((n_in, n_hidden)) / np.sqrt(n_in),
        "b1": np.zeros(n_hidden),
        "W2": rng.standard_normal((n_hidden, n_out)) / np.sqrt(n_hidden),
        "b2": np.zeros(n_out),
    }


def predict_logits(params, X):
    hidden = np.tanh(X @ params["W1"] + params["b1"])
    return hidden @ params["W2"] + params["b2"]


def log_softmax(z):
    z = z - np.max(z, axis=1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))


def loss(params, X, Y, weight_decay=1e-4):
    """Mean cross-entropy against one-hot labels ``Y``, plus a little L2 on the weights."""
    log_probs = log_softmax(predict_logits(params, X))
    data_term = -np.mean(np.sum(Y * log_probs, axis=1))
    penalty = 0.0
    for name in ("W1", "W2"):
        penalty = penalty + np.sum(params[name] ** 2)
    return data_term + weight_decay * penalty


def accuracy(params, X, labels):
    return float(np.mean(np.argmax(predict_logits(params, X), axis=1) == labels))


def load_data(rng, test_fraction=0.25):
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.data / 16.0                       # pixel intensities 0..16 -> 0..1
    labels = digits.target
    order = rng.permutation(len(X))
    n_test = int(len(X) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return X[train], labels[train], X[test], labels[test], digits.images[test]


def train(params, X, labels, epochs, rng, batch_size=32, lr=0.3):
    """Minibatch SGD; returns the trained parameters and the loss of every step."""
    loss_and_grad = mo.value_and_grad(loss)
    Y = np.eye(10)[labels]
    history = []
    for epoch in range(epochs):
        order = rng.permutation(len(X))
        for start in range(0, len(X), batch_size):
            batch = order[start:start + batch_size]
            value, grads = loss_and_grad(params, X[batch], Y[batch])
            params = {name: params[name] - lr * grads[name] for name in params}
            history.append(value)
        if (epoch + 1) % 5 == 0 or epoch == 0:
            print(f"  epoch {epoch + 1:2d}: mean training loss {np.mean(history[-(len(X) // batch_size):]):.4f}")
    return params, history


def _output_dir():
    return Path(os.environ.get("MORULA_EXAMPLES_OUTPUT", Path(__file__).resolve().parent / "output"))


def _plot(outdir, history, params, X_test, labels_test, images_test):
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    predicted = np.argmax(predict_logits(params, X_test), axis=1)
    fig = plt.figure(figsize=(11, 4.5))
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(history, lw=0.5, color="0.6", label="minibatch loss")
    window = 20
    if len(history) > window:
        smooth = np.convolve(history, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window - 1, len(history)), smooth, label=f"{window}-step average")
    ax.set_yscale("log")
    ax.set_xlabel("SGD step")
    ax.set_ylabel("loss (cross-entropy + L2)")
    ax.set_title("Training loss")
    ax.legend(fontsize="small")
    wrong = np.flatnonzero(predicted != labels_test)[:6]         # show the mistakes too
    right = np.flatnonzero(predicted == labels_test)[:18 - len(wrong)]
    for slot, i in enumerate(np.concatenate([right, wrong])):    # a 3 x 6 grid of test images
        sub = fig.add_subplot(3, 12, 12 * (slot // 6) + 7 + slot % 6)
        sub.imshow(images_test[i], cmap="gray_r")
        ok = predicted[i] == labels_test[i]
        sub.set_title(f"{predicted[i]}" if ok else f"{predicted[i]} (is {labels_test[i]})",
                      color="green" if ok else "red", fontsize=9)
        sub.axis("off")
    fig.text(0.74, 0.95, "test digits and predicted labels (red: wrong)", ha="center")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / "03_digits_classifier.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(quick=False, plot=True, outdir=None):
    """Train the classifier; return its test accuracy and final loss."""
    rng = np.random.default_rng(0)
    X_train, y_train, X_test, y_test, images_test = load_data(rng)
    n_hidden, epochs = (32, 5) if quick else (64, 30)
    params = init_params(rng, X_train.shape[1], n_hidden, 10)

    Y_train = np.eye(10)[y_train]
    mo.testing.check_grads(loss, (params, X_train[:16], Y_train[:16]), modes="rev")
    print("gradient matches finite differences (mo.testing.check_grads)")

    print(f"training a 64-{n_hidden}-10 tanh network on {len(X_train)} digits, {epochs} epochs")
    t0 = time.perf_counter()
    params, history = train(params, X_train, y_train, epochs, rng)
    seconds = time.perf_counter() - t0
    result = {
        "train_accuracy": accuracy(params, X_train, y_train),
        "test_accuracy": accuracy(params, X_test, y_test),
        "final_loss": float(np.mean(history[-20:])),
        "initial_loss": float(history[0]),
        "steps": len(history),
        "train_seconds": seconds,
    }
    print(f"{len(history)} SGD steps in {seconds:.1f} s; "
          f"train accuracy {result['train_accuracy']:.3f}")
    if plot:
        path = _plot(Path(outdir) if outdir is not None else _output_dir(),
                     history, params, X_test, y_test, images_test)
        if path is not None:
            print(f"plot: {path}")
    print(f"test accuracy {result['test_accuracy']:.3f} on {len(X_test)} held-out digits")
    return result


if __name__ == "__main__":
    main()
