"""What-if sweeps over the accelerator model: a study TOML → points (accelerator overrides ×
workloads), evaluated analytically (fitted cost model) or with each PE synthesized, on a local
process pool or Dask, cached by point hash (an interrupted sweep resumes), written as CSV,
Pareto plots and a markdown summary under reports/whatif/<study>/.
"""

from ._report import PARETO_AXES, baseline_table, pareto_front, write_outputs
from ._run import CACHE_ROOT, POINT_DELAY_ENV, RunStats, evaluate_point, read_cache, run_study
from ._study import MODEL_VERSION, Study, expand_points, load_study, point_key, study_from_dict

__all__ = ["Study", "load_study", "study_from_dict", "expand_points", "point_key", "MODEL_VERSION",
           "evaluate_point", "run_study", "read_cache", "RunStats", "CACHE_ROOT", "POINT_DELAY_ENV",
           "pareto_front", "write_outputs", "PARETO_AXES", "baseline_table"]
