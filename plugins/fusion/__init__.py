"""Late-fusion pipelines (paper 3.4): the modalities' out-of-fold posteriors, concatenated,
into an SVM (linear, RBF), a logistic regression or a k-NN."""

from __future__ import annotations

from emokit_core.hookspecs import hookimpl
from emokit_core.specs import ComponentSpec, Param, PipelineSpec, lazy

EMOKIT_PLUGIN_API = 1


def build_svm_linear(C: float):
    from emokit_core.estimators import SVCWithPosteriors

    from .late import LateFusion

    return LateFusion(SVCWithPosteriors(kernel="linear", C=C, random_state=0))


def build_svm_rbf(C: float, gamma: str):
    from emokit_core.estimators import SVCWithPosteriors

    from .late import LateFusion

    return LateFusion(SVCWithPosteriors(kernel="rbf", C=C, gamma=gamma, random_state=0))


def build_logreg(C: float):
    from sklearn.linear_model import LogisticRegression

    from .late import LateFusion

    return LateFusion(LogisticRegression(C=C, max_iter=2000))


def build_knn(k: int):
    from sklearn.neighbors import KNeighborsClassifier

    from .late import LateFusion

    return LateFusion(KNeighborsClassifier(n_neighbors=k))


#: The paper's fusion grid (section 3.4, Table A3): C from 1e-4 to 100 for the SVMs and from 0.1
#: to 1e6 for logistic regression, in steps of x10; k = 10 ... 50 neighbours.
SVM_C = tuple(10.0 ** e for e in range(-4, 3))
LOGREG_C = tuple(10.0 ** e for e in range(-1, 7))
KNN_K = (10, 20, 30, 40, 50)


@hookimpl
def register_pipelines(register):
    both = {"quick": {}, "paper": {}}
    register(PipelineSpec("fuse.svm_linear", "fusion", "linear SVM on the concatenated posteriors (paper's best)",
                          build_svm_linear, {"C": Param(0.001, "SVM regularisation (paper: 0.001)")}, both,
                          grid={"C": SVM_C}))
    register(PipelineSpec("fuse.svm_rbf", "fusion", "RBF SVM on the concatenated posteriors", build_svm_rbf,
                          {"C": Param(1.0, "SVM regularisation"), "gamma": Param("scale", "RBF kernel width")}, both,
                          grid={"C": SVM_C}))
    register(PipelineSpec("fuse.logreg", "fusion", "logistic regression on the concatenated posteriors",
                          build_logreg, {"C": Param(1.0, "inverse regularisation strength")}, both,
                          grid={"C": LOGREG_C}))
    register(PipelineSpec("fuse.knn", "fusion", "k-NN (majority of k neighbours) on the concatenated posteriors",
                          build_knn, {"k": Param(10, "neighbours (paper grid: 10-50)")}, both, grid={"k": KNN_K}))


@hookimpl
def register_components(register):
    register(ComponentSpec("fuser", "late", lazy("emokit_plugins.fusion.late:LateFusion"),
                           "concatenate per-modality posteriors -> any classifier"))
