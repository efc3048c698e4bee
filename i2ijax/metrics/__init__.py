"""Evaluation metrics: shapes oracle networks, clustering accuracies and the
translation metrics of the `shapes` benchmark; FID / KID / IS / NDB / JSD
(`distances`) on InceptionV3 features (`inception`), LPIPS (`lpips`), cached
real-data statistics (`reference_stats`)."""
