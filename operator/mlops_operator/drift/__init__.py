"""The drift engine: statistics (stats), category labels and folds (categories), both sides prepared
(features), test selection and the dataset verdict (select), the HTML report (report), and reading the
reference (reference, the only module doing I/O). Pure numpy/scipy; no Kubernetes imports."""
