"""Networks (linen, NHWC): MDMM (`mdmm`), GMVAE blocks (`gmvae`), GMVAE-MDMM
(`gmvae_mdmm`), and loaders from PyTorch parity fixtures (`torch_convert`)."""
