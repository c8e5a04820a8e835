"""The Data step: choosing images, the scan report and the split panel."""
