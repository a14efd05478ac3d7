"""Reading and writing the files PneumoViewer works with: DICOM, RLE, annotation CSVs. No Qt."""
