"""The drift engine: statistics (stats), the prepared reference (reference), test selection and the
dataset verdict (select), and the HTML report (report). Pure numpy/scipy; no Kubernetes imports."""
